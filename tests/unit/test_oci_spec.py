"""The OCI spec a ContainerSpec becomes, as dockerd would build it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.container_spec import ContainerSpec, Limits, Mount, TmpfsOptions
from runtime.oci_spec import (
    DEFAULT_CAPABILITIES,
    ImageConfig,
    RuntimeMounts,
    SpecError,
    build_spec,
    capabilities,
    hosts_file,
    merge_args,
    merge_env,
    resolve_user,
)

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:app\napp:x:1000:\n"
IMAGE = ImageConfig(
    entrypoint=["/entry"], cmd=["serve"], env=["PATH=/bin", "A=1"], working_dir="/srv", user="app"
)


def build(spec: ContainerSpec, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "limits": Limits(),
        "cgroups_path": "/shoal/c1",
        "netns_path": None,
        "passwd": PASSWD,
        "group": GROUP,
        "files": RuntimeMounts(),
    }
    args.update(kw)
    return build_spec(spec, IMAGE, **args)


def test_command_replaces_entrypoint_and_cmd_and_args_replace_cmd() -> None:
    assert merge_args(ContainerSpec(image="i"), IMAGE) == ["/entry", "serve"]
    assert merge_args(ContainerSpec(image="i", args=["x"]), IMAGE) == ["/entry", "x"]
    assert merge_args(ContainerSpec(image="i", command=["sh"]), IMAGE) == ["sh"]
    assert merge_args(ContainerSpec(image="i", command=["sh"], args=["-c", "x"]), IMAGE) == [
        "sh",
        "-c",
        "x",
    ]
    with pytest.raises(SpecError, match="no command"):
        merge_args(ContainerSpec(image="i"), ImageConfig())


def test_spec_env_overrides_image_env_and_path_has_a_default() -> None:
    assert merge_env(ContainerSpec(image="i", env=["A=2", "B=3"]), IMAGE) == [
        "PATH=/bin",
        "A=2",
        "B=3",
    ]
    assert merge_env(ContainerSpec(image="i"), ImageConfig())[0].startswith("PATH=/usr/local")


def test_users_resolve_through_the_images_passwd_and_group() -> None:
    assert resolve_user("app", PASSWD, GROUP, []) == {
        "uid": 1000,
        "gid": 1000,
        "additionalGids": [10],
    }
    assert resolve_user("1000:wheel", PASSWD, GROUP, []) == {
        "uid": 1000,
        "gid": 10,
        "additionalGids": [10],
    }
    assert resolve_user("4242:4343", PASSWD, GROUP, []) == {"uid": 4242, "gid": 4343}
    assert resolve_user("", PASSWD, GROUP, ["app"]) == {
        "uid": 0,
        "gid": 0,
        "additionalGids": [1000],
    }
    with pytest.raises(SpecError, match="unable to find user nobody"):
        resolve_user("nobody", PASSWD, GROUP, [])


def test_capabilities_start_from_dockers_default_set() -> None:
    assert capabilities([], []) == sorted(DEFAULT_CAPABILITIES)
    caps = capabilities(["NET_ADMIN"], ["CAP_NET_RAW", "mknod"])
    assert "CAP_NET_ADMIN" in caps and "CAP_NET_RAW" not in caps and "CAP_MKNOD" not in caps
    assert capabilities(["CHOWN"], ["ALL"]) == ["CAP_CHOWN"]


def test_resources_mounts_and_namespaces_reach_the_spec() -> None:
    spec = ContainerSpec(
        image="i",
        read_only=True,
        hostname="web",
        sysctls={"net.ipv4.ip_forward": "1"},
        mounts=[
            Mount(target="/data", type="volume", source="/vol/d"),
            Mount(target="/ro", type="bind", source="/etc", read_only=True),
            Mount(
                target="/scratch",
                type="tmpfs",
                tmpfs_options=TmpfsOptions(size_bytes=1 << 20, mode=0o1777),
            ),
        ],
    )
    out = build(
        spec,
        limits=Limits(nano_cpus=500_000_000, memory_bytes=64 << 20, pids=50),
        netns_path="/run/netns/c1",
    )
    resources = out["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20}
    assert resources["cpu"] == {"quota": 50_000, "period": 100_000}
    assert resources["pids"] == {"limit": 50}
    assert out["root"] == {"path": "rootfs", "readonly": True}
    assert {"type": "network", "path": "/run/netns/c1"} in out["linux"]["namespaces"]
    assert out["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}
    assert out["linux"]["cgroupsPath"] == "/shoal/c1"
    by_target = {m["destination"]: m for m in out["mounts"]}
    assert by_target["/data"]["options"] == ["rbind", "rw"]
    assert by_target["/ro"]["options"] == ["rbind", "ro"]
    assert "size=1048576" in by_target["/scratch"]["options"]
    assert "mode=1777" in by_target["/scratch"]["options"]
    assert out["process"]["user"]["uid"] == 1000 and out["process"]["cwd"] == "/srv"


def test_init_wraps_the_command_in_tini() -> None:
    out = build(
        ContainerSpec(image="i", init=True),
        files=RuntimeMounts(init_binary=Path("/usr/bin/tini-static")),
    )
    assert out["process"]["args"] == ["/sbin/docker-init", "--", "/entry", "serve"]
    assert any(m["destination"] == "/sbin/docker-init" for m in out["mounts"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ContainerSpec(image="i", mounts=[Mount(target="rel", source="/x")]), "absolute"),
        (ContainerSpec(image="i", mounts=[Mount(target="/x", source="rel")]), "absolute"),
        (ContainerSpec(image="i", mounts=[Mount(target="/x", type="nfs")]), "invalid mount type"),
        (ContainerSpec(image="i", user="ghost"), "unable to find user ghost"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(spec: ContainerSpec, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build(spec)


def test_negative_limits_are_refused() -> None:
    with pytest.raises(SpecError, match="negative"):
        build(ContainerSpec(image="i"), limits=Limits(memory_bytes=-1))


def test_hosts_file_has_localhost_hostname_and_extra_entries() -> None:
    text = hosts_file("web", ["10.0.0.5 db db.local"])
    assert "127.0.0.1\tlocalhost" in text and "127.0.1.1\tweb" in text
    assert "10.0.0.5\tdb db.local" in text
    with pytest.raises(SpecError):
        hosts_file("web", ["lonely"])
