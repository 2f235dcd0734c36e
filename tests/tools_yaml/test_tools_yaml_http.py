"""HTTP tools against a real server on 127.0.0.1: auth, templating, retries, timeouts, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tools_yaml_server import TOKEN, Server

from glm_agent.exceptions import ConfigError, ModelRetry, ToolArgumentsError
from glm_agent.tools import YamlToolRegistry, load_registry


def write(tmp_path: Path, text: str, name: str = "tools.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def registry(
    tmp_path: Path, server: Server, tools: str, http: str = "", **kw: Any
) -> YamlToolRegistry:
    text = f"version: 1\n{http}tools:\n{tools}".replace("BASE", server.url)
    return load_registry(write(tmp_path, text), env=kw.pop("env", {"SHOP_TOKEN": TOKEN}), **kw)


def call(reg: YamlToolRegistry, name: str, args: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with reg:
            return await reg.get(name).run(args)

    return asyncio.run(go())


ORDER = """
  - name: get_order
    description: Look up an order by its number.
    parameters:
      type: object
      properties:
        order_id: {type: string, description: The order number}
        expand: {type: boolean}
      required: [order_id]
    http:
      url: BASE/orders/{order_id}
      auth: {type: bearer, token: "${SHOP_TOKEN}"}
      response: {pointer: /data}
"""


def test_bearer_auth_path_template_query_and_pointer(tmp_path: Path, server: Server) -> None:
    reg = registry(tmp_path, server, ORDER)
    out = call(reg, "get_order", {"order_id": "A 10?x=1#y", "expand": True})
    # The path argument is URL-quoted into one segment; booleans go as true/false.
    assert out["id"] == "A 10?x=1#y"
    assert out["expand"] is True
    assert [i["sku"] for i in out["items"]] == ["A1", "B2"]


def test_wrong_token_is_a_readable_error_for_the_model(tmp_path: Path, server: Server) -> None:
    reg = registry(tmp_path, server, ORDER, env={"SHOP_TOKEN": "wrong"})
    with pytest.raises(ModelRetry) as e:
        call(reg, "get_order", {"order_id": "A1"})
    assert "HTTP 401" in str(e.value)
    assert "bad or missing token" in str(e.value)
    assert "wrong" not in str(e.value)  # secrets stay out of the message


def test_missing_secrets_are_one_load_error_naming_them(tmp_path: Path, server: Server) -> None:
    other = ORDER.replace("get_order", "get_order2").replace("${SHOP_TOKEN}", "${OTHER}")
    with pytest.raises(ConfigError) as e:
        registry(tmp_path, server, ORDER + other, env={})
    assert "missing environment variable(s): SHOP_TOKEN, OTHER" in str(e.value)
    assert "(used by: get_order, get_order2)" in str(e.value)
    lines = (tmp_path / "tools.yaml").read_text().splitlines()
    assert "${SHOP_TOKEN}" in lines[e.value.line - 1]
    assert e.value.key == "tools[0].http.auth.token"


def test_jmespath_selector(tmp_path: Path, server: Server) -> None:
    tools = ORDER.replace("response: {pointer: /data}", 'response: {jmespath: "data.items[].sku"}')
    assert call(registry(tmp_path, server, tools), "get_order", {"order_id": "1"}) == ["A1", "B2"]


def test_json_body_query_mapping_headers_and_api_key(tmp_path: Path, server: Server) -> None:
    tools = """
  - name: echo
    description: Echo.
    parameters:
      type: object
      properties:
        text: {type: string}
        lang: {type: string}
        count: {type: integer}
    http:
      method: POST
      url: BASE/echo
      query: {language: lang}
      headers: {X-Tenant: "${TENANT}"}
      auth: {type: api_key, name: X-Api-Key, in: header, value: "${KEY}"}
"""
    reg = registry(tmp_path, server, tools, env={"TENANT": "acme", "KEY": "k-1"})
    out = call(reg, "echo", {"text": "hi", "lang": "en", "count": 2})
    assert out["json"] == {"text": "hi", "count": 2}
    assert out["query"] == {"language": "en"}
    assert out["headers"] == {"x-tenant": "acme", "x-api-key": "k-1"}


def test_basic_auth(tmp_path: Path, server: Server) -> None:
    tools = """
  - name: me
    description: Who am I.
    parameters: {type: object, properties: {}}
    http:
      url: BASE/basic
      auth: {type: basic, username: ann, password: "${PW}"}
"""
    assert call(registry(tmp_path, server, tools, env={"PW": "pw"}), "me", {}) == {"user": "ann"}
    with pytest.raises(ModelRetry, match="HTTP 401"):
        call(registry(tmp_path, server, tools, env={"PW": "nope"}), "me", {})


FLAKY = """
  - name: flaky
    description: Sometimes down.
    parameters:
      type: object
      properties: {key: {type: string}, fail: {type: integer}}
      required: [key]
    http:
      method: METHOD
      url: BASE/flaky/{key}
      query: [fail]
      retries: 2
      backoff: 0.01
    policy: {idempotent: IDEMPOTENT}
"""


def test_idempotent_tools_retry_5xx(tmp_path: Path, server: Server) -> None:
    tools = FLAKY.replace("METHOD", "GET").replace("IDEMPOTENT", "true")
    assert call(registry(tmp_path, server, tools), "flaky", {"key": "r1", "fail": 2}) == {
        "attempts": 3
    }
    with pytest.raises(ModelRetry, match="HTTP 503: temporarily down"):
        call(registry(tmp_path, server, tools), "flaky", {"key": "r2", "fail": 5})
    assert server.hits("r2") == 3  # one try and two retries


def test_non_idempotent_tools_do_not_retry(tmp_path: Path, server: Server) -> None:
    tools = FLAKY.replace("METHOD", "POST").replace("IDEMPOTENT", "false")
    with pytest.raises(ModelRetry, match="HTTP 503"):
        call(registry(tmp_path, server, tools), "flaky", {"key": "n1", "fail": 1})
    assert server.hits("n1") == 1


SLOW = """
  - name: slow
    description: Slow.
    parameters: {type: object, properties: {seconds: {type: number}}}
    http: {url: BASE/slow, timeout: 0.2, retries: 1, backoff: 0.01}
    policy: {idempotent: true}
"""


def test_request_timeout_is_retried_then_reported(tmp_path: Path, server: Server) -> None:
    with pytest.raises(ModelRetry, match=r"timed out after 0.2s \(2 attempts\)"):
        call(registry(tmp_path, server, SLOW), "slow", {"seconds": 1.0})
    assert call(registry(tmp_path, server, SLOW), "slow", {"seconds": 0.0}) == {"slept": 0.0}


def test_response_size_limit(tmp_path: Path, server: Server) -> None:
    tools = """
  - name: big
    description: Big.
    parameters: {type: object, properties: {n: {type: integer}}}
    http: {url: BASE/big}
"""
    http = "http:\n  max_response_bytes: 1000\n"
    reg = registry(tmp_path, server, tools, http=http)
    assert call(reg, "big", {"n": 1000}) == "x" * 1000
    with pytest.raises(ModelRetry, match="1000-byte limit"):
        call(registry(tmp_path, server, tools, http=http), "big", {"n": 1001})


def test_error_body_is_shortened(tmp_path: Path, server: Server) -> None:
    tools = """
  - name: status
    description: Status.
    parameters: {type: object, properties: {code: {type: integer}}, required: [code]}
    http: {url: "BASE/status/{code}"}
"""
    with pytest.raises(ModelRetry) as e:
        call(registry(tmp_path, server, tools), "status", {"code": 404})
    assert "HTTP 404: nope: 404" in str(e.value)
    assert len(str(e.value)) < 700


def test_host_allow_list(tmp_path: Path, server: Server) -> None:
    tools = """
  - name: t
    description: T.
    parameters: {type: object}
    http: {url: BASE/big}
"""
    with pytest.raises(ConfigError) as e:
        registry(tmp_path, server, tools, http="http:\n  allowed_hosts: [api.example.com]\n")
    assert "'127.0.0.1' is not in http.allowed_hosts: api.example.com" in str(e.value)
    assert e.value.key == "tools[0].http.url"
    reg = registry(tmp_path, server, tools, http="http:\n  allowed_hosts: [127.0.0.1]\n")
    assert reg.pool.allowed_hosts == {"127.0.0.1"}
    with pytest.raises(ModelRetry, match=r"host 'example\.org' is not allowed"):
        reg.pool.check_url("http://example.org/x")


def test_arguments_validated_before_any_request(tmp_path: Path, server: Server) -> None:
    reg = registry(tmp_path, server, ORDER)
    with pytest.raises(ToolArgumentsError, match="missing required argument: 'order_id'"):
        call(reg, "get_order", {"expand": True})


def test_one_pooled_client_per_registry(tmp_path: Path, server: Server) -> None:
    reg = registry(
        tmp_path, server, ORDER + FLAKY.replace("METHOD", "GET").replace("IDEMPOTENT", "true")
    )

    async def go() -> tuple[Any, Any]:
        async with reg:
            await reg.get("get_order").run({"order_id": "1"})
            first = reg.pool.client()
            await reg.get("flaky").run({"key": "pool", "fail": 0})
            return first, reg.pool.client()

    a, b = asyncio.run(go())
    assert a is b
    assert a.is_closed and not reg.pool.is_open
