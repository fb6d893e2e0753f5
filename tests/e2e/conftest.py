"""A real server process (``manage.py serve``) on the test database, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _db_env() -> dict[str, str]:
    """Environment that points a subprocess at the test database this pytest run uses."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    url = os.environ.get("DATABASE_URL", "")
    if url:
        parts = urlsplit(url)
        return {"DATABASE_URL": urlunsplit(parts._replace(path="/" + name))}
    return {"EMBEDDED_PG_DBNAME": name}


SERVER_LOGS = ROOT / "var" / "test-logs"  # one folder per test run (its pid), kept for reading after a failure


def prune_server_logs() -> None:
    """Delete the server logs of earlier runs that have ended (a run still going keeps its own)."""
    import shutil

    import psutil

    for old in ROOT.joinpath("var").glob("test-server-*.log"):  # where older checkouts wrote them
        old.unlink(missing_ok=True)
    for folder in SERVER_LOGS.glob("*"):
        if folder.is_dir() and not (folder.name.isdigit() and psutil.pid_exists(int(folder.name))):
            shutil.rmtree(folder, ignore_errors=True)


class PlatformServer:
    """``manage.py serve`` in a subprocess; ``restart()`` and ``kill()`` for crash tests."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.env = {**os.environ, **_db_env(), "PORT": str(self.port), "LOG_LEVEL": "WARNING", **env}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = SERVER_LOGS / str(os.getpid()) / f"server-{self.port}.log"

    def start(self) -> PlatformServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--skip-setup", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer /health within 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log_file.close()

    def kill(self) -> None:
        """kill -9: no clean-up in the server process."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self._log_file.close()

    def restart(self) -> PlatformServer:
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def defaults(transactional_db):
    from runtime.defaults import load_defaults

    load_defaults()


@pytest.fixture
def platform_server(transactional_db, defaults, scripted_llm, scripted_search):
    """A started server whose LLM is ``scripted_llm`` and web search ``scripted_search``."""
    servers: list[PlatformServer] = []

    def make(**env: str) -> PlatformServer:
        base = {"LLM_BASE_URL": scripted_llm.base_url, "LLM_API_KEY": "test-llm-key",
                "LLM_MAX_RETRIES": "0", "TAVILY_BASE_URL": scripted_search.base_url,
                "TAVILY_API_KEY": "test-search-key"}
        server = PlatformServer({**base, **env}).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
