"""Schemathesis against the API's own OpenAPI schema (the admin routes, and the chat and session
routes that ``platform_site.openapi_chat`` documents), on a real server process.

Every operation of ``/api/schema/`` gets bounded property-based cases, valid (positive) and
invalid (negative) ones, authenticated with an admin key through the schema's ``ApiKey`` bearer
scheme. Each response goes through schemathesis's default checks: no 5xx, a documented status
code, content type and headers, a body that matches the documented schema, auth enforced,
schema-violating requests rejected.

One default check is off: ``positive_data_acceptance`` (a request the schema allows must not be
refused). The request schema cannot say everything the services validate (``parameters`` must
be a JSON Schema of an object, an entrypoint must import from an allowed module, an endpoint
must not be private, template content keys are checked by pydantic), so random "valid" bodies
are refused with a documented 400 that this check would count as a failure.
"""

from __future__ import annotations

import time

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests.e2e.conftest import PlatformServer, defaults, platform_server  # noqa: F401  (fixtures)

MAX_EXAMPLES = 25  # per operation and generation mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _fuzz(operation, mode: GenerationMode, base_url: str, counter: list[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        counter[0] += 1
        case.call_and_validate(base_url=base_url, timeout=30)

    run()


def test_admin_api_conforms_to_its_schema(platform_server, admin_key, request):  # noqa: F811
    server: PlatformServer = platform_server()
    schema_url = server.base_url + "/api/schema/?format=json"
    assert httpx.get(schema_url, timeout=10).status_code == 200
    config = schemathesis.Config.from_dict({
        "auth": {"openapi": {"ApiKey": {"bearer": admin_key}}},
        "checks": {"positive_data_acceptance": {"enabled": False}},
    })
    schema = schemathesis.openapi.from_url(schema_url, config=config, timeout=10)

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    failures: dict[str, str] = {}
    cases: dict[str, int] = {}
    started = time.monotonic()
    for operation in operations:
        for mode in MODES:
            label = f"{operation.label} [{mode.value}]"
            counter = [0]
            try:
                _fuzz(operation, mode, server.base_url, counter)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 (a FailureGroup is a BaseExceptionGroup): report all
                failures[label] = str(exc)
            cases[label] = counter[0]

    total = sum(cases.values())
    summary = (f"schemathesis: {total} cases over {len(operations)} operations x {len(MODES)} modes "
               f"in {time.monotonic() - started:.0f}s, {len(failures)} failing")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the count shows in a normal (captured, -q) run too
        print(f"\n{summary}")
    print(summary, *(f"  {n:4d}  {label}" for label, n in cases.items()), sep="\n")
    report = "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())
    assert not failures, f"{summary}\n\n{report}"
    assert total >= len(operations) * len(MODES) * 10, cases  # cases were really generated and sent
