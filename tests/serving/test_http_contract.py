"""The service keeps its own contract: Schemathesis generates requests from `/openapi.json` and checks every
answer against it (status codes, content types, JSON bodies, `Allow` on 405), a bounded run with a fixed
seed (issue 41, part 2). Plus the findings of the first unbounded run, each as a plain test."""

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from starlette.testclient import TestClient

from committee.serving.http_app import ServiceSettings, create_app
from committee.serving.trained import Committee


@pytest.fixture(scope="module")
def app(finished_run):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))
        committee = Committee.load(finished_run)
        yield create_app(committee, ServiceSettings(max_body_bytes=200_000, max_request_images=8, max_wait_ms=2))


def test_every_answer_keeps_the_schema(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/predict", "GET /v1/model", "GET /v1/model/card"}
    cases = {"n": 0}
    for operation in operations:
        # A schema-valid body need not be a picture (any string is a valid "images" item, any bytes a valid
        # file): refusing those with a 400 is the documented answer, so acceptance of schema-valid data is
        # not checked. Every other check of Schemathesis is (status codes, content types, JSON bodies, 5xx).
        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def keeps_schema(case):
            cases["n"] += 1
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        keeps_schema()
    assert cases["n"] >= 3 * len(operations)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_the_schema_documents_the_body_the_bounds_and_the_errors(client):
    doc = client.get("/openapi.json").json()
    predict = doc["paths"]["/v1/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    top_k = next(p for p in predict["parameters"] if p["name"] == "top_k")
    assert top_k["schema"]["minimum"] == 1 and top_k["schema"]["maximum"] == 10
    assert {"400", "413", "415", "422", "503"} <= set(predict["responses"])
    assert predict["responses"]["415"]["content"]["application/json"]["schema"]["required"] == ["error"]
    card = doc["paths"]["/v1/model/card"]["get"]["responses"]
    assert set(card["200"]["content"]) == {"text/markdown"} and "404" in card


def test_findings_of_the_unbounded_run(client):
    pixels = {"arrays": np.zeros((28, 28), int).tolist()}
    r = client.post("/v1/predict?top_k=0", json=pixels)
    assert r.status_code == 422 and "top_k" in r.json()["error"]  # as the schema's minimum says
    assert client.post("/v1/predict").status_code == 415  # no body: documented
    card = client.get("/v1/model/card")
    assert card.headers["content-type"].startswith("text/markdown")
    r = client.get("/v1/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "error" in r.json()
