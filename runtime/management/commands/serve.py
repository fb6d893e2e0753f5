"""``manage.py serve``: migrate, load defaults, recover from a crash, serve with uvicorn."""

import atexit
import os
import socket

import psutil
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def _stop_own_instances() -> None:
    """At exit (Ctrl-C, SIGTERM): this process's instances stop; sessions they were running fail."""
    from sessions_app.instances import instances_stop
    from sessions_app.models import AgentInstance, InstanceStatus

    try:
        own = list(AgentInstance.objects.filter(host=socket.gethostname(), pid=os.getpid())
                   .exclude(status=InstanceStatus.STOPPED).values_list("pk", flat=True))
        instances_stop(instance_ids=own, reason="the server process running this session was stopped")
    except Exception:  # the database may already be gone at exit
        pass


def _local_llm_banner(endpoint, title: str, license_: str) -> str:
    return (f"LLM: local toy model {title} ({license_}) on {endpoint.base_url}, {endpoint.threads} thread(s), "
            f"context {endpoint.ctx}; loaded in {endpoint.start_s:.1f}s, warm-up {endpoint.warmup_s:.1f}s. "
            "It is a small model for trying the platform offline: set LLM_BASE_URL for real work.")


class Command(BaseCommand):
    help = "Serve the platform (ASGI, uvicorn) on HOST:PORT after migrating and loading defaults."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SERVE_HOST)
        parser.add_argument("--port", type=int, default=settings.SERVE_PORT)
        parser.add_argument("--skip-setup", action="store_true", help="Do not migrate or load defaults.")

    def handle(self, *args, host: str, port: int, skip_setup: bool, **options):
        from sessions_app.instances import instances_stop_dead

        if not skip_setup:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("load_defaults", verbosity=0)
        alive = {p.pid for p in psutil.process_iter()}
        stopped = instances_stop_dead(
            host=socket.gethostname(), alive_pids=alive,
            reason="the server process running this session stopped unexpectedly",
        )
        if stopped:
            self.stderr.write(f"Recovered {stopped} instance(s) left by a dead process.")
        atexit.register(_stop_own_instances)
        from retrieval.services import search_warm_up

        search_warm_up()
        self._start_local_llm()
        self.stdout.write(f"Serving on http://{host}:{port} (Ctrl-C to stop)")
        import uvicorn

        # uvicorn on uvloop + httptools: measured ~20% less CPU per session than daphne (twisted).
        # On SIGTERM, running streams get SHUTDOWN_GRACE_S to finish; then they are cancelled.
        uvicorn.run("platform_site.asgi:application", host=host, port=port, lifespan="off", loop="uvloop",
                    http="httptools", log_level="warning", access_log=False,
                    timeout_graceful_shutdown=settings.SHUTDOWN_GRACE_S)

    def _start_local_llm(self) -> None:
        """On the local backend, install (first run, with progress bars), start and warm up the
        model before serving, so the first chat does not wait for it. A failure does not stop
        the server: sessions fail with the reason, which is printed here too."""
        from runtime.config import RuntimeSettings
        from runtime.local_llm import LocalLLMError, server, weights

        runtime_settings = RuntimeSettings.from_django()
        if runtime_settings.llm_backend != "local":
            return
        config = runtime_settings.local_llm
        try:
            endpoint = server.ensure_started(config, progress=True)
        except LocalLLMError as exc:
            self.stderr.write(f"Local LLM unavailable, sessions on it will fail: {exc}")
            return
        if config.gguf:
            title, license_ = endpoint.gguf.name, "license: see the file's source"
        else:
            package = weights.package_for(config)
            title, license_ = package.title, package.license.split(" (")[0]
        self.stderr.write(_local_llm_banner(endpoint, title, license_))
