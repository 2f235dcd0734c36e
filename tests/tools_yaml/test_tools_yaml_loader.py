"""Loading YAML registries: bindings, policies, includes, environments, errors with lines."""

import asyncio
import itertools
import textwrap
from pathlib import Path

import pytest

from glm_agent.exceptions import ConfigError, ToolArgumentsError
from glm_agent.tools import HttpEndpoint, load_registry, registry_from_spec

_ids = itertools.count()

FUNCS = '''
from pydantic import BaseModel, Field


class RefundArgs(BaseModel):
    order_id: str = Field(description="The order")
    amount: float = Field(gt=0, description="How much")


def refund(order_id: str, amount: float, reason: str = "") -> dict:
    """Refund an order.

    Args:
        order_id: The order number.
        amount: How much to refund.
        reason: Why.
    """
    return {"order_id": order_id, "amount": amount, "reason": reason}


def refund_model(order_id: str, amount: float) -> str:
    """Refund via a model."""
    return f"{order_id}:{amount}"
'''


def module(tmp_path: Path) -> str:
    """A uniquely named module of tool functions beside the registry."""
    name = f"yaml_tools_{next(_ids)}_{tmp_path.name[-12:].replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(FUNCS)
    return name


def write(tmp_path: Path, text: str, name: str = "tools.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def run(reg: object, name: str, args: dict[str, object]) -> object:
    return asyncio.run(reg.get(name).run(args))  # type: ignore[attr-defined]


def test_python_binding_schema_from_function_and_policy(tmp_path: Path) -> None:
    mod = module(tmp_path)
    path = write(
        tmp_path,
        f"""
        version: 1
        tools:
          - name: refund
            python: {mod}:refund
            policy: {{timeout: 5, requires_approval: true, redact: [order_id], max_concurrency: 2}}
        """,
    )
    reg = load_registry(path, env={})
    t = reg.get("refund")
    assert t.definition.description == "Refund an order."
    assert t.definition.parameters["required"] == ["order_id", "amount"]
    assert t.policy.requires_approval and t.policy.timeout == 5 and t.policy.max_concurrency == 2
    assert t.redacted({"order_id": "A1", "amount": 3}) == {"order_id": "***", "amount": 3}
    assert run(reg, "refund", {"order_id": "A1", "amount": "2.5"}) == {
        "order_id": "A1",
        "amount": 2.5,
        "reason": "",
    }


def test_python_binding_yaml_schema_must_agree(tmp_path: Path) -> None:
    mod = module(tmp_path)
    text = f"""
        version: 1
        tools:
          - name: refund
            description: Refund.
            python: {mod}:refund
            parameters:
              type: object
              properties:
                order_id: {{type: string}}
                amount: {{type: integer}}
                note: {{type: string}}
              required: [order_id, amount]
        """
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_registry(path, env={})
    msg = str(e.value)
    assert "in the YAML but not the function: note" in msg
    assert "in the function but not the YAML: reason" in msg
    assert "amount: type integer in the YAML, number in the function" in msg
    assert e.value.line == line_of(path, "parameters:")
    assert e.value.key == "tools[0].parameters"
    # Once they agree, the YAML's extra constraints are enforced too.
    fixed = text.replace("integer}", "number, minimum: 1}").replace(
        "note: {type: string}", "reason: {type: string, enum: [damaged, late]}"
    )
    reg = load_registry(write(tmp_path, fixed), env={})
    with pytest.raises(ToolArgumentsError, match="amount"):
        run(reg, "refund", {"order_id": "A", "amount": 0.5})
    with pytest.raises(ToolArgumentsError, match="reason"):
        run(reg, "refund", {"order_id": "A", "amount": 2, "reason": "bored"})
    assert run(reg, "refund", {"order_id": "A", "amount": 2, "reason": "late"})


def test_parameters_from_a_pydantic_model(tmp_path: Path) -> None:
    mod = module(tmp_path)
    path = write(
        tmp_path,
        f"""
        version: 1
        tools:
          - name: refund_model
            python: {mod}:refund_model
            parameters: {mod}:RefundArgs
        """,
    )
    reg = load_registry(path, env={})
    props = reg.get("refund_model").definition.parameters["properties"]
    assert props["amount"]["exclusiveMinimum"] == 0
    assert run(reg, "refund_model", {"order_id": "A", "amount": 2}) == "A:2.0"
    with pytest.raises(ToolArgumentsError, match="amount"):
        run(reg, "refund_model", {"order_id": "A", "amount": -1})


def test_import_errors_name_the_module_and_line(tmp_path: Path) -> None:
    mod = module(tmp_path)
    path = write(
        tmp_path,
        f"""
        version: 1
        tools:
          - name: a
            python: {mod}:refnd
        """,
    )
    with pytest.raises(ConfigError) as e:
        load_registry(path, env={})
    assert "has no 'refnd'; it has: " in str(e.value) and "refund" in str(e.value)
    assert (e.value.line, e.value.key) == (4, "tools[0].python")
    path = write(tmp_path, "version: 1\ntools:\n  - name: a\n    python: no_such_mod_xyz:f\n")
    with pytest.raises(ConfigError, match="No module named 'no_such_mod_xyz'"):
        load_registry(path, env={})


@pytest.mark.parametrize(
    ("snippet", "key", "needle", "message"),
    [
        ("    timout: 3\n", "tools[0].timout", "timout", "unknown key 'timout'; valid keys: name,"),
        ("    policy: {retry: 1}\n", "tools[0].policy.retry", "policy", "valid keys: timeout,"),
        ("    http: {url: http://x/, verb: GET}\n", "tools[0].http.verb", "verb", "method, url"),
        (
            "    http: {url: http://x/, auth: {type: oauth}}\n",
            "tools[0].http.auth",
            "auth",
            "api_key",
        ),
        ("    http: {url: http://x/, method: FETCH}\n", "tools[0].http.method", "FETCH", "'GET'"),
        ("    python: m:f\n    http: {url: http://x/}\n", "tools[0]", "name: t", "exactly one"),
    ],
)
def test_schema_errors_point_at_the_key(
    tmp_path: Path, snippet: str, key: str, needle: str, message: str
) -> None:
    text = "version: 1\ntools:\n  - name: t\n    description: T.\n    parameters: {type: object}\n"
    path = write(tmp_path, text + snippet)
    with pytest.raises(ConfigError) as e:
        load_registry(path, env={})
    assert e.value.key == key
    assert e.value.line == line_of(path, needle)
    assert message in str(e.value)
    assert str(e.value).startswith(f"{path}:{e.value.line} ({key}): ")


def test_invalid_json_schema_points_inside_parameters(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        tools:
          - name: t
            description: T.
            parameters:
              type: object
              properties:
                n:
                  type: integr
            http: {url: "http://127.0.0.1/"}
        """,
    )
    with pytest.raises(ConfigError) as e:
        load_registry(path, env={})
    assert "invalid JSON Schema at properties/n/type" in str(e.value)
    assert e.value.line == line_of(path, "type: integr")


def test_yaml_level_errors(tmp_path: Path) -> None:
    bad = write(tmp_path, "version: 1\ntools:\n  - name: a\n    name: b\n")
    with pytest.raises(ConfigError, match="duplicate key 'name'") as e:
        load_registry(bad, env={})
    assert e.value.line == 4
    unsafe = write(tmp_path, "version: 1\ntools: !!python/object/apply:os.system [echo hi]\n")
    with pytest.raises(ConfigError, match="not valid YAML") as e:
        load_registry(unsafe, env={})
    assert e.value.line == 2
    with pytest.raises(ConfigError, match="missing 'version'"):
        load_registry(write(tmp_path, "tools: []\n"), env={})
    with pytest.raises(ConfigError, match="Input should be 1"):
        load_registry(write(tmp_path, "version: 2\ntools: []\n"), env={})
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_registry(tmp_path / "nope.yaml", env={})


def test_includes_and_duplicates(tmp_path: Path) -> None:
    mod = module(tmp_path)
    (tmp_path / "sub").mkdir()
    write(
        tmp_path, f"version: 1\ntools:\n  - name: refund\n    python: {mod}:refund\n", "base.yaml"
    )
    root = write(
        tmp_path,
        f"""
        version: 1
        include: [base.yaml]
        tools:
          - name: refund2
            python: {mod}:refund_model
        """,
    )
    reg = load_registry(root, env={})
    assert reg.names == ["refund", "refund2"]
    assert reg.sources == [str(root), str(tmp_path / "base.yaml")]
    dup = write(
        tmp_path,
        f"version: 1\ninclude: [base.yaml]\ntools:\n  - name: refund\n    python: {mod}:refund\n",
        "dup.yaml",
    )
    with pytest.raises(ConfigError, match=r"duplicate tool name, first defined at .*base.yaml:3"):
        load_registry(dup, env={})
    write(tmp_path, "version: 1\ninclude: [b.yaml]\n", "a.yaml")
    write(tmp_path, "version: 1\ninclude: [a.yaml]\n", "b.yaml")
    with pytest.raises(ConfigError, match="include cycle"):
        load_registry(tmp_path / "a.yaml", env={})
    missing = write(tmp_path, "version: 1\ninclude: [gone.yaml]\n", "m.yaml")
    with pytest.raises(ConfigError, match="included file not found") as e:
        load_registry(missing, env={})
    assert e.value.key == "include[0]"


ENVS = """
version: 1
tools:
  - name: status
    description: Service status.
    parameters: {type: object, properties: {}}
    http:
      url: http://dev.internal/status
      timeout: 5
environments:
  prod:
    http: {allowed_hosts: [api.example.com]}
    tools:
      status:
        http: {url: "https://api.example.com/status"}
        policy: {idempotent: true}
"""


def test_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, ENVS)
    dev = load_registry(path, env={})
    assert dev.environment is None
    endpoint = dev.get("status").function
    assert isinstance(endpoint, HttpEndpoint)
    assert endpoint.binding.url == "http://dev.internal/status"
    for reg in (
        load_registry(path, environment="prod", env={}),
        load_registry(path, env={"GLM_AGENT_ENV": "prod"}),
    ):
        endpoint = reg.get("status").function
        assert isinstance(endpoint, HttpEndpoint)
        assert endpoint.binding.url == "https://api.example.com/status"
        assert endpoint.binding.timeout == 5  # merged key by key, not replaced
        assert reg.get("status").policy.idempotent
        assert reg.pool.allowed_hosts == {"api.example.com"}
    with pytest.raises(ConfigError, match="unknown environment 'staging'; environments: prod"):
        load_registry(path, environment="staging", env={})
    bad = write(tmp_path, ENVS.replace("      status:\n", "      statuz:\n"), "bad.yaml")
    with pytest.raises(ConfigError, match="override of unknown tool 'statuz'; tools: status") as e:
        load_registry(bad, environment="prod", env={})
    assert e.value.line == line_of(bad, "statuz")
    typo = write(tmp_path, ENVS.replace("policy: {idempotent", "policy: {idempotant"), "t.yaml")
    # Checked whichever environment is selected (here: none).
    with pytest.raises(ConfigError, match="unknown key 'idempotant'") as e:
        load_registry(typo, env={})
    assert e.value.line == line_of(typo, "idempotant")
    assert e.value.key == "tools[0].policy.idempotant"


def test_anchors_and_merge_keys_keep_lines(tmp_path: Path) -> None:
    text = """
        version: 1
        tools:
          - name: a
            description: A.
            parameters: {type: object}
            http: &http
              url: http://127.0.0.1/a
              timeout: 2
          - name: b
            description: B.
            parameters: {type: object}
            http:
              <<: *http
              url: http://127.0.0.1/b
        """
    reg = load_registry(write(tmp_path, text), env={})
    b = reg.get("b").function
    assert isinstance(b, HttpEndpoint)
    assert (b.binding.url, b.binding.timeout) == ("http://127.0.0.1/b", 2)
    path = write(tmp_path, text.replace("127.0.0.1/b", "127.0.0.1/b/{q}"))
    with pytest.raises(ConfigError, match=r"placeholder \{q\}") as e:
        load_registry(path, env={})
    assert (e.value.key, e.value.line) == ("tools[1].http.url", line_of(path, "/b/{q}"))


def test_registry_from_spec_dict(tmp_path: Path) -> None:
    spec = {
        "version": 1,
        "tools": [
            {
                "name": "s",
                "description": "S.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                "http": {"url": "http://127.0.0.1:9/s/{q}"},
            }
        ],
    }
    reg = registry_from_spec(spec, env={})
    assert reg.names == ["s"]
    http = spec["tools"][0]["http"]  # type: ignore[index]
    http["url"] = "http://127.0.0.1:9/s/{query}"
    with pytest.raises(ConfigError, match=r"URL placeholder \{query\} is not a parameter"):
        registry_from_spec(spec, env={})
    http["url"] = "http://127.0.0.1:9/s"
    http["query"] = []
    with pytest.raises(ConfigError, match=r"parameter\(s\) q are never sent: add them to query"):
        registry_from_spec(spec, env={})
