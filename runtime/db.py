"""Crossing from the event loop into the synchronous services.

Each call runs in a worker thread of its own (``thread_sensitive=False``), so
sessions of one process use the database concurrently; every worker thread
keeps its own persistent connection. Services own their transactions, so a
call is one unit of work.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async

P = ParamSpec("P")
R = TypeVar("R")


def db(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``await db(service)(**kwargs)``: run a synchronous service off the event loop."""
    return functools.wraps(fn)(sync_to_async(fn, thread_sensitive=False))
