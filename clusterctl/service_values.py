"""The values of `service create/update` flags, as docker writes them
(durations 1m30s, sizes 512M, CPUs 0.5, ports, mounts, secrets) → Docker's JSON.

Pure. Every bad value raises click.BadParameter naming its flag, so the user
sees one line instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import click

Spec = dict[str, Any]

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_UNIT_NS["h"] = 3600 * 10**9
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?", re.IGNORECASE)
_CONSTRAINT = re.compile(r"[\w.\-/]+\s*(==|!=)\s*\S.*")
SECRET_FILE_MODE = 0o444


def bad(flag: str, message: str) -> click.BadParameter:
    return click.BadParameter(message, param_hint=f"--{flag}")


def parse_duration(text: str, flag: str) -> int:
    """Go's duration syntax as the docker CLI takes it (1m30s, 500ms, 10s) → ns."""
    if text == "0":
        return 0
    if not text or _DURATION_PART.sub("", text) != "":
        raise bad(flag, f"invalid duration {text!r}: use e.g. 10s, 1m30s or 500ms")
    total = sum(Decimal(n) * _UNIT_NS[unit] for n, unit in _DURATION_PART.findall(text))
    return int(total)


def parse_bytes(text: str, flag: str) -> int:
    """Sizes as docker reads memory (512M, 1g, 1.5GiB, 1024): binary units."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise bad(flag, f"invalid size {text!r}: use e.g. 512M or 1G")
    power = " kmgtp".index((match.group(2) or " ").lower())
    return int(Decimal(match.group(1)) * 1024**power)


def parse_cpus(text: str, flag: str) -> int:
    """CPUs as a decimal (0.5) → NanoCPUs."""
    try:
        nano = Decimal(text) * 10**9
    except InvalidOperation:
        raise bad(flag, f"invalid CPU count {text!r}: use e.g. 0.5 or 2") from None
    if nano < 0 or nano != nano.to_integral_value():
        raise bad(flag, f"invalid CPU count {text!r}: positive, at most 9 decimals")
    return int(nano)


def parse_int(text: str, flag: str, minimum: int = 0) -> int:
    if not re.fullmatch(r"-?\d+", str(text)) or int(text) < minimum:
        raise bad(flag, f"{text!r} is not a whole number of at least {minimum}")
    return int(text)


def key_value(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key or not sep:
        raise bad(flag, f"{text!r} is not KEY=VALUE")
    return key, value


def parse_options(text: str, flag: str) -> list[tuple[str, str]]:
    """`a=1,b=2,flag` (the long syntax of --publish, --mount, --secret)."""
    return [
        (k.strip().lower(), v.strip())
        for k, _, v in (part.partition("=") for part in text.split(","))
        if k.strip() or bad(flag, f"empty field in {text!r}")
    ]


def truthy(value: str, flag: str) -> bool:
    if value.lower() in ("", "1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise bad(flag, f"{value!r} is not true or false")


def _port_range(text: str, flag: str) -> list[int]:
    low, _, high = text.partition("-")
    first = parse_int(low, flag, 1)
    last = parse_int(high, flag, 1) if high else first
    if last < first or last > 65535:
        raise bad(flag, f"invalid port range {text!r}")
    return list(range(first, last + 1))


def parse_publish(text: str, flag: str = "publish") -> list[Spec]:
    """`8080:80[/udp]`, `80` (published port picked by the manager), ranges
    `8080-8081:80-81`, or `published=8080,target=80,protocol=tcp,mode=host`."""
    if "=" in text:
        return [_publish_long(text, flag)]
    ports, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp", "sctp"):
        raise bad(flag, f"invalid protocol {protocol!r} in {text!r}")
    parts = ports.split(":")
    if len(parts) > 2:
        raise bad(flag, f"invalid port {text!r}: use PUBLISHED:TARGET[/PROTOCOL]")
    targets = _port_range(parts[-1], flag)
    published = _port_range(parts[0], flag) if len(parts) == 2 else [0] * len(targets)
    if len(published) != len(targets):
        raise bad(flag, f"port ranges of different sizes in {text!r}")
    return [
        {"Protocol": protocol, "TargetPort": t, "PublishedPort": p, "PublishMode": "ingress"}
        for p, t in zip(published, targets, strict=True)
    ]


def _publish_long(text: str, flag: str) -> Spec:
    port: Spec = {"Protocol": "tcp", "PublishMode": "ingress"}
    for key, value in parse_options(text, flag):
        if key == "target":
            port["TargetPort"] = parse_int(value, flag, 1)
        elif key == "published":
            port["PublishedPort"] = parse_int(value, flag, 1)
        elif key == "protocol" and value in ("tcp", "udp", "sctp"):
            port["Protocol"] = value
        elif key == "mode" and value in ("ingress", "host"):
            port["PublishMode"] = value
        else:
            raise bad(flag, f"invalid field {key}={value} in {text!r}")
    if "TargetPort" not in port:
        raise bad(flag, f"{text!r} has no target port")
    return port


def parse_mount(text: str, flag: str = "mount") -> Spec:
    """`type=bind|volume|tmpfs,source=,target=,readonly,volume-driver=,volume-opt=k=v,
    volume-label=k=v,volume-nocopy,bind-propagation=,tmpfs-size=,tmpfs-mode=`."""
    mount: Spec = {"Type": "volume"}
    volume: Spec = {}
    for key, value in parse_options(text, flag):
        if key == "type":
            if value not in ("bind", "volume", "tmpfs"):
                raise bad(flag, f"invalid mount type {value!r}")
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "destination", "dst"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = truthy(value, flag)
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            name, opt = key_value(value, flag)
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[name] = opt
        elif key == "volume-label":
            name, label = key_value(value, flag)
            volume.setdefault("Labels", {})[name] = label
        elif key == "volume-nocopy":
            volume["NoCopy"] = truthy(value, flag)
        elif key == "bind-propagation":
            mount.setdefault("BindOptions", {})["Propagation"] = value
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_bytes(value, flag)
        elif key == "tmpfs-mode":
            mount.setdefault("TmpfsOptions", {})["Mode"] = _octal(value, flag)
        elif key == "consistency":
            mount["Consistency"] = value
        else:
            raise bad(flag, f"unknown field {key!r} in {text!r}")
    return _checked_mount(mount, volume, text, flag)


def _checked_mount(mount: Spec, volume: Spec, text: str, flag: str) -> Spec:
    kind = mount["Type"]
    if not mount.get("Target"):
        raise bad(flag, f"{text!r} has no target")
    if kind == "bind" and not mount.get("Source"):
        raise bad(flag, f"{text!r}: a bind mount needs a source")
    if kind == "tmpfs" and mount.get("Source"):
        raise bad(flag, f"{text!r}: a tmpfs mount has no source")
    if volume:
        if kind != "volume":
            raise bad(flag, f"{text!r}: volume options on a {kind} mount")
        mount["VolumeOptions"] = volume
    if "BindOptions" in mount and kind != "bind":
        raise bad(flag, f"{text!r}: bind options on a {kind} mount")
    if "TmpfsOptions" in mount and kind != "tmpfs":
        raise bad(flag, f"{text!r}: tmpfs options on a {kind} mount")
    return mount


def _octal(text: str, flag: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise bad(flag, f"{text!r} is not an octal file mode") from None


def parse_file_ref(text: str, flag: str) -> Spec:
    """A secret or config: `NAME`, or `source=NAME,target=PATH,uid=,gid=,mode=0400`.
    The result has `Name` (the secret's) and `File`, IDs are filled in later."""
    ref: Spec = {"File": {"Name": text, "UID": "0", "GID": "0", "Mode": SECRET_FILE_MODE}}
    if "=" not in text:
        return ref | {"Name": text}
    for key, value in parse_options(text, flag):
        if key in ("source", "src"):
            ref["Name"] = value
        elif key == "target":
            ref["File"]["Name"] = value
        elif key in ("uid", "gid"):
            ref["File"][key.upper()] = value
        elif key == "mode":
            ref["File"]["Mode"] = _octal(value, flag)
        else:
            raise bad(flag, f"unknown field {key!r} in {text!r}")
    if not ref.get("Name"):
        raise bad(flag, f"{text!r} has no source")
    if ref["File"]["Name"] == text:
        ref["File"]["Name"] = ref["Name"]
    return ref


def parse_env_file(content: str, environ: Mapping[str, str]) -> list[str]:
    """docker's --env-file: KEY=VALUE lines; a bare KEY takes this shell's value
    (and is dropped when unset); blank lines and # comments are skipped."""
    found = []
    for raw in content.splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" in line:
            found.append(line)
        elif line in environ:
            found.append(f"{line}={environ[line]}")
    return found


def parse_placement_pref(text: str, flag: str = "placement-pref") -> Spec:
    strategy, sep, descriptor = text.partition("=")
    if strategy != "spread" or not sep or not descriptor:
        raise bad(flag, f"{text!r}: only spread=DESCRIPTOR (e.g. spread=node.labels.zone)")
    return {"Spread": {"SpreadDescriptor": descriptor}}


def check_constraint(text: str, flag: str = "constraint") -> str:
    if not _CONSTRAINT.fullmatch(text.strip()):
        raise bad(flag, f"invalid constraint {text!r}: use e.g. node.role==manager")
    return text


def with_tag(image: str) -> str:
    """`img` → `img:latest`, as the docker CLI sends it; a tag or digest stays."""
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in image else f"{image}:latest"


def capability(text: str) -> str:
    """`net_admin` → `CAP_NET_ADMIN`, as the docker CLI normalises them."""
    upper = text.strip().upper()
    return upper if upper == "ALL" or upper.startswith("CAP_") else f"CAP_{upper}"


def port_to_remove(text: str, flag: str = "publish-rm") -> tuple[int, str]:
    """--publish-rm takes a target port (`80`, `80/udp`) or a whole `8080:80`."""
    ports, _, protocol = text.partition("/")
    return parse_int(ports.split(":")[-1], flag, 1), protocol or "tcp"
