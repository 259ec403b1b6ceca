"""Rendered files of a lab: each host's containerd config, the registry config,
and the list of processes the supervisor keeps running. Pure functions."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.spec import REGISTRY_PORT, HostSpec, LabSpec
from runtime.config import RuntimeConfig

SERVICES_FILE = "services.json"
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")


@dataclass(frozen=True)
class ServiceSpec:
    """One long-running process of the lab, started inside a host."""

    name: str
    argv: list[str]
    log: str
    cgroup: str  # the lab's pids cgroup the process (and all it forks) lives in


def host_cgroup(spec: LabSpec, host: HostSpec) -> str:
    """The cgroup under which everything of a host runs, containers included."""
    return f"shoal-{spec.name}/{host.name}"


def enter_host(host: HostSpec) -> list[str]:
    """The argv prefix that runs a command inside a host's namespaces."""
    return [
        "nsenter",
        f"--net=/run/netns/{host.netns}",
        f"--mount={host.mount_ns_file}",
        f"--uts={host.uts_ns_file}",
        "--",
    ]


def containerd_config(host: HostSpec) -> str:
    # The state directory is the host's private tmpfs on /run/containerd (see
    # plan.MakeHostNamespaces); runc keeps its own state under it.
    root = host.directory / "containerd"
    return "\n".join(
        [
            "version = 2",
            f'root = "{root}"',
            'state = "/run/containerd"',
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            "",
            "[grpc]",
            f'  address = "{host.containerd_socket}"',
            "",
            "[ttrpc]",
            f'  address = "{host.containerd_socket}.ttrpc"',
            "",
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{root}/opt"',
            "",
        ]
    )


def registry_config(spec: LabSpec) -> str:
    host = spec.host(1)
    return "\n".join(
        [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {host.directory / 'registry'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {host.address}:{REGISTRY_PORT}",
            "",
        ]
    )


def services(spec: LabSpec) -> list[ServiceSpec]:
    result: list[ServiceSpec] = []
    for host in spec.all_hosts():
        result.append(
            ServiceSpec(
                name=f"{host.name}/containerd",
                argv=[*enter_host(host), "containerd", "--config", str(host.containerd_config)],
                log=str(host.directory / "containerd.log"),
                cgroup=host_cgroup(spec, host),
            )
        )
    first = spec.host(1)
    result.append(
        ServiceSpec(
            name=f"{first.name}/registry",
            argv=[
                *enter_host(first),
                "docker-registry",
                "serve",
                str(first.directory / "registry.yml"),
            ],
            log=str(first.directory / "registry.log"),
            cgroup=host_cgroup(spec, first),
        )
    )
    return result


def render_files(spec: LabSpec) -> dict[Path, str]:
    files = {h.containerd_config: containerd_config(h) for h in spec.all_hosts()}
    files[spec.host(1).directory / "registry.yml"] = registry_config(spec)
    files[spec.directory / SERVICES_FILE] = json.dumps(
        {"services": [asdict(s) for s in services(spec)]}, indent=2
    )
    return files


def load_services(lab_directory: Path) -> list[ServiceSpec]:
    data = json.loads((lab_directory / SERVICES_FILE).read_text(encoding="utf-8"))
    return [ServiceSpec(**s) for s in data["services"]]


def runtime_config(spec: LabSpec, host: HostSpec) -> RuntimeConfig:
    """How a process in a lab host drives that host's containerd: its socket,
    a state directory inside the host's directory, container cgroups under the
    host's (so `lab down` finds them), and the lab's plain-HTTP registry."""
    return RuntimeConfig(
        socket=host.containerd_socket,
        state_dir=host.directory / "runtime",
        cgroup_parent=host_cgroup(spec, host),
        insecure_registries=frozenset({spec.registry_address}),
    )


MANAGER_PORT = 2377
RAFT_PORT = 4242


def manager_address(host: HostSpec) -> str:
    return f"{host.address}:{MANAGER_PORT}"


def docker_tls_args(spec: LabSpec, host: HostSpec) -> list[str]:
    """The docker CLI's flags to reach a host's manager with the lab's admin
    certificate (mutual TLS, the manager's certificate checked)."""
    certs = spec.client_certs
    return [
        "--tlsverify",
        f"--tlscacert={certs / 'ca.pem'}",
        f"--tlscert={certs / 'cert.pem'}",
        f"--tlskey={certs / 'key.pem'}",
        "-H",
        f"tcp://{manager_address(host)}",
    ]


def manager_service(spec: LabSpec, host: HostSpec, join: tuple[str, str] | None) -> ServiceSpec:
    """shoal-manager inside a host; `join` is (manager address, manager token)."""
    script = Path(sys.executable).parent / "shoal-manager"
    argv = [
        *enter_host(host),
        str(script),
        "--data-dir",
        str(host.directory / "manager"),
        "--listen-addr",
        manager_address(host),
        "--advertise-addr",
        manager_address(host),
        "--raft-addr",
        f"{host.address}:{RAFT_PORT}",
        # Removing a shoal volume deletes its data through this host's volumed.
        "--volumed-socket",
        str(volumed_socket(host)),
    ]
    if join is not None:
        argv += ["--join", join[0], "--token", join[1]]
    return ServiceSpec(
        name=f"{host.name}/manager",
        argv=argv,
        log=str(host.directory / "manager.log"),
        cgroup=host_cgroup(spec, host),
    )


def save_services(lab_directory: Path, services: list[ServiceSpec]) -> None:
    tmp = lab_directory / (SERVICES_FILE + ".tmp")
    tmp.write_text(json.dumps({"services": [asdict(s) for s in services]}, indent=2))
    tmp.replace(lab_directory / SERVICES_FILE)


def manager_socket(host: HostSpec) -> Path:
    return host.directory / "manager" / "manager.sock"


def netd_socket(host: HostSpec) -> Path:
    return host.directory / "netd" / "netd.sock"


NETD_METRICS_PORT = 9324
VOLUMED_METRICS_PORT = 9325
SEAWEED_MASTER_PORT = 9333
AGENT_API_PORT = 2376


def netd_service(spec: LabSpec, host: HostSpec, managers: list[str]) -> ServiceSpec:
    """shoal-netd inside a host: it shares the agent's certificate, and names
    container namespaces so that `lab down` knows them as the lab's."""
    argv = [
        *enter_host(host),
        str(Path(sys.executable).parent / "shoal-netd"),
        "--data-dir",
        str(host.directory / "netd"),
        "--cert-dir",
        str(host.directory / "agent" / "certificates"),
        "--node-addr",
        str(host.address),
        "--metrics-addr",
        f"{host.address}:{NETD_METRICS_PORT}",
        "--netns-prefix",
        f"shoal-{spec.name}-ct",
    ]
    for manager in managers:
        argv += ["--manager", manager]
    return ServiceSpec(
        name=f"{host.name}/netd",
        argv=argv,
        log=str(host.directory / "netd.log"),
        cgroup=host_cgroup(spec, host),
    )


def volumed_socket(host: HostSpec) -> Path:
    return host.directory / "volumed" / "volumed.sock"


def volumed_service(spec: LabSpec, host: HostSpec, manager_hosts: list[HostSpec]) -> ServiceSpec:
    """shoal-volumed inside a host: a SeaweedFS master beside every manager,
    a volume server and a filer on every host."""
    role = "manager" if host in manager_hosts else "worker"
    argv = [
        *enter_host(host),
        str(Path(sys.executable).parent / "shoal-volumed"),
        "--data-dir",
        str(host.directory / "volumed"),
        "--socket",
        str(volumed_socket(host)),
        "--ip",
        str(host.address),
        "--role",
        role,
        "--metrics-addr",
        f"{host.address}:{VOLUMED_METRICS_PORT}",
    ]
    for manager in manager_hosts:
        argv += ["--master", f"{manager.address}:{SEAWEED_MASTER_PORT}"]
    return ServiceSpec(
        name=f"{host.name}/volumed",
        argv=argv,
        log=str(host.directory / "volumed.log"),
        cgroup=host_cgroup(spec, host),
    )


def agent_service(spec: LabSpec, host: HostSpec, managers: list[str], token: str) -> ServiceSpec:
    """shoal-agent inside a host, on the host's containerd. Beside a manager
    it takes that manager's node identity (one host, one node, as in swarm)."""
    runtime = runtime_config(spec, host)
    argv = [
        *enter_host(host),
        str(Path(sys.executable).parent / "shoal-agent"),
        "--data-dir",
        str(host.directory / "agent"),
        "--containerd-socket",
        str(runtime.socket),
        "--cgroup-parent",
        runtime.cgroup_parent,
        "--advertise-addr",
        str(host.address),
        "--metrics-addr",
        f"{host.address}:9323",
        "--api-addr",
        f"{host.address}:{AGENT_API_PORT}",
    ]
    argv += ["--netd-socket", str(netd_socket(host))]
    argv += ["--volumed-socket", str(volumed_socket(host))]
    if manager_socket(host).parent.exists():
        argv += ["--manager-socket", str(manager_socket(host))]
    else:
        argv += ["--token", token]
    for manager in managers:
        argv += ["--manager", manager]
    for registry in sorted(runtime.insecure_registries):
        argv += ["--insecure-registry", registry]
    return ServiceSpec(
        name=f"{host.name}/agent",
        argv=argv,
        log=str(host.directory / "agent.log"),
        cgroup=host_cgroup(spec, host),
    )
