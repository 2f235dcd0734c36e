"""The OpenAPI document is valid, and requests generated from it never get a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis
import schemathesis
from serving_harness import make_agent, plain_model

from glm_agent.serving import create_app

_app = create_app(
    [make_agent(Path(tempfile.mkdtemp(prefix="glm-openapi-")))], models={"plain": plain_model()}
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


def test_openapi_document_is_valid() -> None:
    document = _app.openapi()
    assert document["openapi"].startswith("3.")
    # Schemathesis resolves every operation, its parameters and body schemas.
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())
    paths = set(document["paths"])
    assert {
        "/v1/chat/completions",
        "/v1/models",
        "/v1/embeddings",
        "/v1/agents/{name}/runs",
    } <= paths
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert "422" not in chat and {"400", "401", "404", "429"} <= set(chat)


@schema.parametrize()
@hypothesis.settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.path, response.text)
    if response.status_code >= 400 and case.path != "/metrics":
        body = response.json()
        assert set(body["error"]) == {"message", "type", "param", "code"}
