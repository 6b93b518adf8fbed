"""Property-based requests generated from the OpenAPI description (schemathesis
strategies driven by hypothesis): whatever a client sends, the API answers
without a server error, errors are RFC 9457 problem documents, and successful
answers match their declared schema. Every operation in /api/openapi.json is
covered, including those added later."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_OPERATION = 25


def _check_operation(operation, headers) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = case.call(headers=headers)
        where = (case.method, case.formatted_path, response.text[:300])
        assert response.status_code < 500, where
        if response.status_code >= 400:
            content_type = response.headers["content-type"]
            if isinstance(content_type, list):  # schemathesis keeps every header's values
                content_type = content_type[0]
            assert content_type.startswith("application/problem+json"), where
            body = response.json()
            assert body["status"] == response.status_code and "\n" not in body["detail"], where
        else:
            case.validate_response(response,
                                   checks=[schemathesis.checks.response_schema_conformance])

    check()


def test_generated_requests_never_cause_a_server_error(app, bearer):
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    headers = bearer("qa1")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    for operation in operations:
        _check_operation(operation, headers)
