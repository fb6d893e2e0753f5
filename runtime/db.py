"""Crossing from the event loop into the synchronous services.

Each call runs on a worker thread of the runtime's pool (``thread_sensitive=False``;
``ASGI_THREADS`` threads), so sessions of one process use the database concurrently;
every worker thread keeps its own persistent connection. Services own their
transactions, so a call is one unit of work. A crossing costs a thread hand-off
both ways: a service call should do a whole unit of work, not one query.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")


def db(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``await db(service)(**kwargs)``: run a synchronous service off the event loop.

    The call runs in a copy of the caller's context (so log correlation ids follow it). This is
    what ``asgiref.sync_to_async(thread_sensitive=False)`` does, minus its bookkeeping for
    thread-sensitive mode, which costs more than the hand-off itself on the hot path.
    """

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return await db_start(fn, *args, **kwargs)

    return call


def db_start(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
    """``db(fn)(...)`` handed to a worker now, without waiting: await the future later (a write the
    run need not wait for; see ``runtime.recorder``). Call it from the event loop."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(
        _executor(), functools.partial(context.run, fn, *args, **kwargs))


_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor | None:
    """``ASGI_THREADS`` worker threads when set; otherwise the event loop's default executor
    (``min(32, CPUs + 4)`` threads, gone with the loop)."""
    global _pool
    threads = getattr(settings, "ASGI_THREADS", 0)
    if threads and _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="runtime-db")
    return _pool
