"""Property: any JSON body sent to the release API is answered with a status below 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web.conftest import sign_in
from web.release_data import build_lot

_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.text(max_size=80) | st.sampled_from(["R1", "OOS-1", "1e999", "nan", "%",
                                                      "EU/mL", "negative", "lab_error"]))
JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
FIELDS = ["test", "value", "unit", "method", "retest_of", "reason", "conclusion", "phase",
          "summary"]
BODIES = st.fixed_dictionaries({}, optional={f: JSON for f in FIELDS}) | JSON
#: Endpoints and a lot-number / id in their path; signing endpoints are left out (a
#: generated wrong password would lock the account; their bodies are the same models).
PATHS = st.sampled_from(["/api/v1/lots/EV-P-1/results", "/api/v1/lots/EV-P-1/submit",
                         "/api/v1/lots/NOT-A-LOT/results", "/api/v1/investigations/1/close",
                         "/api/v1/investigations/OOS-x/close"])


def test_generated_bodies_never_give_a_500(client, web_db):
    build_lot(web_db, "EV-P-1", endotoxin=0.8)
    analyst = {"X-CSRF-Token": sign_in(client, "analyst1")}

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(path=PATHS, body=BODIES)
    def check(path, body):
        # NaN and Infinity go out as the tokens Python writes (not JSON; the server refuses).
        response = client.post(path, headers={**analyst, "content-type": "application/json"},
                               content=json.dumps(body))
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

    check()
