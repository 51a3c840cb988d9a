"""Property-based API testing: schemathesis generates requests from /openapi.json (valid ones and
deliberately invalid ones) against a live server. No response may be a 5xx, and every response
must be what the schema documents: its status, its content type and its body's schema.

Server limits are tiny (16 tokens, 16 steps), so the many valid generations take milliseconds.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

pytestmark = pytest.mark.slow  # about 1,000 requests: under a minute here

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CASES_PER_OPERATION = {"POST": 160, "GET": 30}  # per generation mode; about 1,000 requests in all
MIN_CASES = 900


def test_no_server_errors_on_generated_requests(live):
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    calls, failures, statuses = {"n": 0}, [], Counter()
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            examples = CASES_PER_OPERATION[operation.method.upper()]

            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                response = case.call(base_url=live.url, timeout=30)
                calls["n"] += 1
                statuses[(case.operation.label, response.status_code)] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                except (Exception, FailureGroup) as err:  # FailureGroup: every check that failed
                    failures.append(
                        f"{response.status_code} {case.operation.label}: {case.body!r}"[:400]
                        + f" -> {response.text[:300]}\n{str(err)[:600]}"
                    )

            try:
                check()
            except Unsatisfiable:  # nothing can be invalid about an operation without inputs
                assert mode == GenerationMode.NEGATIVE
    elapsed = time.monotonic() - started
    print(f"schemathesis: {calls['n']} requests in {elapsed:.1f}s; {dict(statuses)}")
    assert not failures, "\n".join(failures[:10])
    assert calls["n"] >= MIN_CASES
