"""/secrets and /configs: the same shape, except that a secret's Data is never
shown and a config's is (docker-api.md §3)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from aiohttp import web

from manager.http.context import context
from manager.http.framework import (
    APIError,
    Handler,
    add_route,
    bad_request,
    json_response,
    parse_filters,
    read_json,
    required_version,
)
from manager.http.lookup import matches_filters, new_id, resolve
from manager.http.swarm import require_cluster
from manager.http.writes import write
from manager.secret_box import SecretBox
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

MAX_DATA_BYTES = 500 * 1024
FILTERS = {"id", "label", "name", "names"}


@dataclass(frozen=True)
class Kind:
    table: str  # secret | config
    spec_list_key: str  # where a ContainerSpec names them: Secrets | Configs
    id_key: str  # SecretID | ConfigID
    shows_data: bool


SECRET = Kind("secret", "Secrets", "SecretID", shows_data=False)
CONFIG = Kind("config", "Configs", "ConfigID", shows_data=True)


SEALED = "SealedData"  # a secret's value, sealed (manager/secret_box.py); never shown


def public(kind: Kind, obj: Obj) -> Obj:
    shown = {k: v for k, v in obj.items() if k != SEALED}
    spec = dict(shown.get("Spec") or {})
    if not kind.shows_data:
        spec.pop("Data", None)
    spec.setdefault("Labels", {})
    shown["Spec"] = spec
    return shown


def data_of(box: SecretBox, obj: Obj) -> str:
    """A secret's or config's value, base64 (as nodes receive it)."""
    sealed = obj.get(SEALED)
    if sealed is None:
        return str((obj.get("Spec") or {}).get("Data") or "")
    return base64.b64encode(box.open(str(sealed), obj["ID"])).decode()


def users_of(tx: ReadTx, kind: Kind, object_id: str) -> list[str]:
    users = []
    for service in tx.all("service"):
        container = (service["Spec"].get("TaskTemplate") or {}).get("ContainerSpec") or {}
        if any(
            ref.get(kind.id_key) == object_id for ref in container.get(kind.spec_list_key) or []
        ):
            users.append(service["Spec"].get("Name", service["ID"]))
    return users


def handlers(kind: Kind) -> dict[str, Handler]:
    async def create(request: web.Request) -> web.Response:
        ctx = context(request)
        body = await read_json(request)
        if not isinstance(body, dict) or not body.get("Name"):
            raise bad_request(f"{kind.table} name must be given")
        try:
            data = base64.b64decode(str(body.get("Data") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"{kind.table} data must be base64") from None
        if len(data) > MAX_DATA_BYTES:
            raise bad_request(f"{kind.table} data must be larger than 0 and less than 500KB")
        object_id = new_id()
        spec = {"Name": body["Name"], "Labels": body.get("Labels") or {}}
        stored: Obj = {"ID": object_id, "Spec": spec}
        if kind.shows_data:
            spec["Data"] = base64.b64encode(data).decode()
        else:  # only sealed: the value never reaches the log or etcd in clear
            stored[SEALED] = ctx.secret_box.seal(data, object_id)
        for key in ("Driver", "Templating"):
            if body.get(key):
                spec[key] = body[key]

        def make(tx: WriteTx) -> None:
            require_cluster(tx)
            tx.create(kind.table, stored)

        await write(ctx.store, make)
        return json_response({"ID": object_id}, status=201)

    async def list_all(request: web.Request) -> web.Response:
        ctx = context(request)
        filters = parse_filters(request, FILTERS)
        if "names" in filters:
            filters = {**filters, "name": filters.pop("names")}

        def read(tx: ReadTx) -> list[Obj]:
            require_cluster(tx)
            return [
                public(kind, o)
                for o in tx.all(kind.table)
                if matches_filters(o, kind.table, filters)
            ]

        return json_response(sorted(ctx.store.view(read), key=lambda o: o["ID"]))

    async def inspect(request: web.Request) -> web.Response:
        ctx = context(request)
        found = ctx.store.view(lambda tx: resolve(tx, kind.table, request.match_info["id"]))
        return json_response(public(kind, found))

    async def update(request: web.Request) -> web.Response:
        ctx = context(request)
        version = required_version(request, kind.table)
        body = await read_json(request)

        def change(tx: WriteTx) -> None:
            obj = resolve(tx, kind.table, request.match_info["id"])
            if body.get("Data") and body["Data"] != data_of(ctx.secret_box, obj):
                raise bad_request(f"only updates to Labels are allowed for {kind.table}s")
            obj["Version"] = {"Index": version}
            obj["Spec"] = {**obj["Spec"], "Labels": body.get("Labels") or {}}
            tx.update(kind.table, obj)

        await write(ctx.store, change)
        return web.Response(status=200)

    async def remove(request: web.Request) -> web.Response:
        ctx = context(request)

        def delete(tx: WriteTx) -> None:
            obj = resolve(tx, kind.table, request.match_info["id"])
            users = users_of(tx, kind, obj["ID"])
            if users:
                raise APIError(
                    400,
                    f"rpc error: code = InvalidArgument desc = {kind.table} "
                    f"'{obj['Spec']['Name']}' is in use by the following service: {users[0]}",
                )
            tx.delete(kind.table, obj["ID"])

        await write(ctx.store, delete)
        return web.Response(status=204)

    return {
        "create": create,
        "list": list_all,
        "inspect": inspect,
        "update": update,
        "remove": remove,
    }


def register(router: web.UrlDispatcher) -> None:
    for kind in (SECRET, CONFIG):
        h = handlers(kind)
        base = f"/{kind.table}s"
        add_route(router, "POST", f"{base}/create", h["create"])
        add_route(router, "GET", base, h["list"])
        add_route(router, "GET", f"{base}/{{id}}", h["inspect"])
        add_route(router, "POST", f"{base}/{{id}}/update", h["update"])
        add_route(router, "DELETE", f"{base}/{{id}}", h["remove"])
