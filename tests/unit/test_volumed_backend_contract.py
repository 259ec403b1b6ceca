"""The one suite every `VolumeBackend` passes (DESIGN.md §3.7): here the fake
and the local driver; tests/component/test_volumed_shoal.py runs it against
the shoal driver on real SeaweedFS processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from volumed.backend import FakeBackend, LocalBackend, VolumeBackend
from volumed.model import Volume, new_volume

MakeBackend = Callable[[], VolumeBackend]


class BackendContract:
    """Subclasses give `make_backend` (a new backend over the same storage on
    every call, as after a restart) and `driver`."""

    driver = "shoal"

    def volume(self, name: str) -> Volume:
        return new_volume(name, {"driver": self.driver}, "2026-01-01T00:00:00Z")

    async def test_data_written_in_a_mount_is_there_after_a_remount(
        self, make_backend: MakeBackend
    ) -> None:
        backend = make_backend()
        volume = self.volume("contract-data")
        await backend.create(volume)
        path = await backend.mount(volume)
        assert path == backend.path(volume)
        assert volume.name in backend.mounted()
        (path / "hello.txt").write_text("kept")
        await backend.unmount(volume)
        assert volume.name not in backend.mounted()
        path = await backend.mount(volume)
        assert (path / "hello.txt").read_text() == "kept"
        await backend.unmount(volume)

    async def test_mount_and_unmount_are_idempotent(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        volume = self.volume("contract-twice")
        await backend.create(volume)
        await backend.create(volume)
        await backend.unmount(volume)  # never mounted: fine
        first = await backend.mount(volume)
        assert await backend.mount(volume) == first
        await backend.unmount(volume)
        await backend.unmount(volume)
        assert volume.name not in backend.mounted()

    async def test_removing_deletes_the_data(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        volume = self.volume("contract-gone")
        await backend.create(volume)
        (await backend.mount(volume) / "old.txt").write_text("x")
        await backend.unmount(volume)
        await backend.remove(volume)
        await backend.create(volume)
        assert not (await backend.mount(volume) / "old.txt").exists()
        await backend.unmount(volume)
        await backend.remove(volume)

    async def test_recovery_keeps_mounts_in_use_and_undoes_the_rest(
        self, make_backend: MakeBackend
    ) -> None:
        before = make_backend()
        kept, dropped = self.volume("contract-kept"), self.volume("contract-dropped")
        for volume in (kept, dropped):
            await before.create(volume)
            (await before.mount(volume) / "f").write_text(volume.name)
        await before.close()  # volumed stops; the mounts stay for the containers
        after = make_backend()
        await after.recover([kept])
        assert kept.name in after.mounted()
        assert dropped.name not in after.mounted()
        assert (after.path(kept) / "f").read_text() == kept.name
        await after.unmount(kept)
        assert after.mounted() == set()


class TestLocalBackend(BackendContract):
    driver = "local"

    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> MakeBackend:
        return lambda: LocalBackend(tmp_path / "local")


class TestFakeBackend(BackendContract):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> MakeBackend:
        return lambda: FakeBackend(tmp_path / "fake")
