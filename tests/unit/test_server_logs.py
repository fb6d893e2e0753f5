"""Server logs of test runs: each run writes its own folder; a later run deletes ended runs' folders."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.conftest import ROOT, SERVER_LOGS, PlatformServer, prune_server_logs


def test_a_run_keeps_its_own_logs_and_prunes_those_of_ended_runs():
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    ended_dir = SERVER_LOGS / ended.stdout.strip()
    ended_dir.mkdir(parents=True, exist_ok=True)
    (ended_dir / "server-1.log").write_text("old run")
    legacy = ROOT / "var" / "test-server-1.log"
    legacy.write_text("older checkout")
    mine = PlatformServer({}).log
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("this run")

    prune_server_logs()

    assert not ended_dir.exists()
    assert not legacy.exists()
    assert mine.read_text() == "this run"
    assert mine.parent == SERVER_LOGS / str(os.getpid())
    mine.unlink()
