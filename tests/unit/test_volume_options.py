"""The volume rules the manager and volumed share: drivers, their options
and their defaults, with a message that says what is wrong."""

from __future__ import annotations

import pytest

from api.errors import InvalidArgument
from api.volume_options import (
    VolumeOptionsError,
    mounted_alone,
    normalize_volume_options,
    scope_of,
    validate_volume_name,
)

pytestmark = pytest.mark.timeout(10)


def test_shoal_options_get_their_defaults() -> None:
    assert normalize_volume_options("shoal", None) == {"replication": "001", "sharing": "none"}
    given = {"replication": "010", "sharing": "all"}
    assert normalize_volume_options("shoal", given) == given
    assert normalize_volume_options("local", {}) == {}


@pytest.mark.parametrize(
    ("driver", "options", "message"),
    [
        ("nfs", {}, "unknown volume driver 'nfs': use local or shoal"),
        ("", {}, "unknown volume driver '': use local or shoal"),
        ("shoal", {"size": "1G"}, "shoal driver: unknown option(s) size (known: replication, "),
        ("local", {"sharing": "all"}, "local driver: unknown option(s) sharing (known: none)"),
        ("shoal", {"replication": "01"}, "invalid replication '01': three digits xyz, copies"),
        ("shoal", {"replication": "abc"}, "other servers of the same rack (z), e.g. 000 or 001"),
        ("shoal", {"sharing": "some"}, "invalid sharing 'some': use none"),
    ],
)
def test_bad_requests_say_what_is_wrong(driver: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(VolumeOptionsError) as raised:
        normalize_volume_options(driver, options)
    assert message in raised.value.message
    # A ValueError, and the API's 400 for whoever answers a request with it.
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, InvalidArgument)
    assert raised.value.status == 400


@pytest.mark.parametrize("name", ["db", "my-vol_1.2", "A0"])
def test_docker_volume_names_pass(name: str) -> None:
    assert validate_volume_name(name) == name


@pytest.mark.parametrize("name", ["x", "../etc", "-db", "a/b", "", None, 7])
def test_other_names_do_not(name: object) -> None:
    with pytest.raises(VolumeOptionsError, match="invalid volume name"):
        validate_volume_name(name)


def test_only_a_distributed_volume_not_shared_is_mounted_alone() -> None:
    assert mounted_alone("shoal", {"replication": "001", "sharing": "none"})
    assert mounted_alone("shoal", {})
    assert not mounted_alone("shoal", {"sharing": "all"})
    assert not mounted_alone("local", {})
    assert (scope_of("shoal"), scope_of("local")) == ("global", "local")
