"""Secrets and configs. A secret's Data is accepted on create and kept by the
store, but never served: inspect goes through `Secret.without_data()`."""

from __future__ import annotations

import msgspec

from api.base import Annotations, Driver, Meta, Obj, always, always_new


class SecretSpec(Annotations):
    data: bytes = b""  # base64 in JSON
    driver: Driver | None = None
    templating: Driver | None = None


class Secret(Meta):
    spec: SecretSpec = always_new(SecretSpec)

    def without_data(self) -> Secret:
        """The secret as inspect shows it: everything but the payload."""
        return msgspec.structs.replace(self, spec=msgspec.structs.replace(self.spec, data=b""))


class ConfigSpec(Annotations):
    data: bytes = b""  # base64 in JSON; unlike a secret's, always served
    templating: Driver | None = None


class Config(Meta):
    spec: ConfigSpec = always_new(ConfigSpec)


class IDResponse(Obj):
    """`{"ID": …}`, what creating a secret or config returns."""

    id: str = always("", name="ID")
