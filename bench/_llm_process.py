"""The scripted LLM of ``vs_sgr_agent_core.py``, in a process of its own.

A benchmark process that both drives the client and serves the LLM shares one GIL between them:
an LLM request that arrives while the client is reading a chunk waits for it, and that wait
would be charged to the system under test. Here the LLM is alone in its process. It prints its
base URL, answers chat completions at once (``_scripted.respond``) and serves ``GET /_service_times``:
``[[start, seconds], ...]`` per request, ``start`` on the wall clock (shared with the parent),
``seconds`` from the request line read (its headers parsed next) to the last byte written.
Usage: python bench/_llm_process.py (stopped by its parent)
"""

from __future__ import annotations

import json
import threading
import time

from _scripted import respond

from tests.fakes.llm_server import ScriptedLLM


def main() -> None:
    llm = ScriptedLLM()
    llm.set_responder(respond)
    times: list[tuple[float, float]] = []
    lock = threading.Lock()
    llm.start()
    handler = llm._server.RequestHandlerClass

    class Timed(handler):
        def parse_request(self) -> bool:
            self._wall, self._started = time.time(), time.perf_counter()
            return super().parse_request()

        def do_POST(self) -> None:
            super().do_POST()
            with lock:
                times.append((self._wall, time.perf_counter() - self._started))

        def do_GET(self) -> None:
            if self.path != "/_service_times":
                return super().do_GET()
            with lock:
                body = json.dumps(times).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

    llm._server.RequestHandlerClass = Timed
    print(llm.base_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
