"""The store's tables: what each holds, which field names an object (unique
per table), and which secondary indexes it keeps. Objects are Docker-shaped
JSON dicts (api/ defines their schema); the store only reads these fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def _path(obj: Obj, *keys: str) -> Any:
    value: Any = obj
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


@dataclass(frozen=True)
class Table:
    name: str
    # The field that names an object; names are unique in the table. None: no names.
    name_of: Callable[[Obj], str | None] | None = None
    # Secondary indexes: index name -> the key an object is filed under (None: not filed).
    indexes: dict[str, Callable[[Obj], str | None]] = field(default_factory=dict)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("cluster", name_of=lambda o: _str(_path(o, "Spec", "Name"))),
        Table(
            "node",
            indexes={
                "role": lambda o: _str(_path(o, "Spec", "Role")),
                "state": lambda o: _str(_path(o, "Status", "State")),
            },
        ),
        Table("service", name_of=lambda o: _str(_path(o, "Spec", "Name"))),
        Table(
            "task",
            indexes={
                "service": lambda o: _str(o.get("ServiceID")),
                "node": lambda o: _str(o.get("NodeID")),
                "desired_state": lambda o: _str(o.get("DesiredState")),
                "state": lambda o: _str(_path(o, "Status", "State")),
                "slot": lambda o: (
                    f"{o.get('ServiceID')}/{o.get('Slot')}" if o.get("Slot") else None
                ),
            },
        ),
        Table("network", name_of=lambda o: _str(o.get("Name"))),
        Table("secret", name_of=lambda o: _str(_path(o, "Spec", "Name"))),
        Table("config", name_of=lambda o: _str(_path(o, "Spec", "Name"))),
        Table("volume", name_of=lambda o: _str(o.get("Name"))),
    )
}


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no store table {name!r}") from None


def object_id(table_name: str, obj: Obj) -> str:
    # Docker spells it `Id` for networks and uses `Name` as the key of volumes.
    if table_name == "network":
        return str(obj.get("Id") or obj.get("ID") or "")
    if table_name == "volume":
        return str(obj.get("Name") or "")
    return str(obj.get("ID") or "")
