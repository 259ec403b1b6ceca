"""Volume requests, the one-user rule, the state file and mount recovery plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from volumed.model import (
    Volume,
    VolumeError,
    load_volumes,
    new_volume,
    same_request,
    save_volumes,
)
from volumed.shoal import MountChange, fuse_mountpoints, plan_recovery

NOW = "2026-01-01T00:00:00Z"


def test_a_shoal_volume_defaults_to_replication_001_and_no_sharing() -> None:
    volume = new_volume("db", None, NOW)
    assert (volume.driver, volume.replication, volume.sharing) == ("shoal", "001", "none")


def test_options_are_read() -> None:
    volume = new_volume("db", {"driver": "shoal", "replication": "010", "sharing": "all"}, NOW)
    assert (volume.replication, volume.sharing) == ("010", "all")
    assert new_volume("cache", {"driver": "local"}, NOW).driver == "local"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("db", {"driver": "nfs"}, "unknown volume driver 'nfs'"),
        ("db", {"replication": "9"}, "invalid replication '9'"),
        ("db", {"sharing": "some"}, "invalid sharing 'some'"),
        ("db", {"size": "1G"}, "shoal driver: unknown option"),
        ("db", {"driver": "local", "replication": "001"}, "local driver: unknown option"),
        ("../etc", None, "invalid volume name"),
        ("x", None, "invalid volume name"),
        (None, None, "invalid volume name"),
    ],
)
def test_bad_requests_get_clear_errors(
    name: object, options: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(VolumeError, match=message.replace("(", r"\(")):
        new_volume(name, options, NOW)


def test_a_repeated_create_must_ask_for_the_same() -> None:
    existing = new_volume("db", None, NOW)
    assert same_request(existing, new_volume("db", {"replication": "001"}, "later"))
    assert not same_request(existing, new_volume("db", {"replication": "000"}, NOW))


def test_mounts_are_a_sorted_set() -> None:
    volume = new_volume("db", {"sharing": "all"}, NOW)
    volume = volume.with_mount("b").with_mount("a").with_mount("b")
    assert volume.mounts == ("a", "b")
    assert volume.without_mount("a").without_mount("zz").mounts == ("b",)


def test_state_file_round_trip(tmp_path: Path) -> None:
    volumes = {
        "db": new_volume("db", None, NOW).with_mount("t1"),
        "cache": new_volume("cache", {"driver": "local"}, NOW),
    }
    path = tmp_path / "volumes.json"
    save_volumes(path, volumes)
    assert load_volumes(path) == volumes
    assert load_volumes(tmp_path / "none.json") == {}
    assert isinstance(load_volumes(path)["db"], Volume)


def test_recovery_plan() -> None:
    plan = plan_recovery(
        in_use={"healthy", "dead-process", "not-mounted"},
        mounted={"healthy", "dead-process", "leftover"},
        serving={"healthy", "not-mounted", "stray-process"},
    )
    assert plan == [
        MountChange("remount", "dead-process"),
        MountChange("adopt", "healthy"),
        MountChange("unmount", "leftover"),
        MountChange("remount", "not-mounted"),
        MountChange("unmount", "stray-process"),
    ]
    assert plan_recovery(set(), set(), set()) == []


def test_fuse_mountpoints_reads_mountinfo() -> None:
    mountinfo = "\n".join(
        [
            "22 1 0:21 / /proc rw,nosuid - proc proc rw",
            "150 27 0:43 / /v/mounts/db rw,relatime - fuse.seaweedfs 1.2.3.4:8888:/shoal/x rw",
            "151 27 0:44 / /v/mounts/my\\040vol rw - fuse.seaweedfs f:/x rw",
            "152 27 0:45 / /elsewhere/db rw - fuse.seaweedfs f:/x rw",
            "153 27 0:46 / /v/mounts/tmp rw - tmpfs tmpfs rw",
        ]
    )
    assert fuse_mountpoints(mountinfo, Path("/v/mounts")) == {
        Path("/v/mounts/db"),
        Path("/v/mounts/my vol"),
    }
