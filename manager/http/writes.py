"""Store writes from handlers, with the store's refusals as Docker's errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from manager.http.framework import APIError
from manager.store.proposer import NoLeader
from manager.store.state import NameConflict, ObjectExists, ObjectMissing, VersionConflict
from manager.store.store import Store, WriteTx

T = TypeVar("T")

OUT_OF_SEQUENCE = "rpc error: code = Unknown desc = update out of sequence"


async def write(store: Store, fn: Callable[[WriteTx], T]) -> T:
    try:
        return await store.update(fn)
    except VersionConflict:
        raise APIError(500, OUT_OF_SEQUENCE) from None  # moby 20.10 answers 500 here
    except NameConflict as exc:
        raise APIError(409, str(exc)) from None
    except ObjectExists as exc:
        raise APIError(409, str(exc)) from None
    except ObjectMissing as exc:
        raise APIError(404, str(exc)) from None
    except NoLeader as exc:
        raise APIError(503, str(exc)) from None
