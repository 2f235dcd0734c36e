"""`agent.yaml`: an agent as configuration, validated by pydantic, with errors at file:line (key).

```yaml
name: support
model: vllm:http://gpu-1:8000/v1#glm-4.5      # or a mapping: {name:, settings:, options:}
system_prompt: You are the support assistant of ACME.
tools:
  - tools.yaml                # a YAML tool registry (relative to this file)
  - shop_tools:order_status   # a Python function, module:function (module beside this file)
mcp:                          # MCP servers whose tools the agent gets (as in a tool registry)
  files: {command: npx, args: ["@modelcontextprotocol/server-filesystem", ./docs], prefix: files}
knowledge: kb/                # or {path: kb/, mode: context}, or shared by replicas:
                              # {backend: milvus, uri: "http://milvus:19530", collection: support}
memory: sqlite:///.glm-agent/sessions.db      # the default; `memory: none` turns it off
limits: {max_steps: 8, total_tokens_limit: 20000, model_timeout: 60, run_timeout: 120}
environments:                 # overlays picked with load_agent(path, environment="prod")
  prod: {model: "zhipu:glm-4.5", memory: "${SESSIONS_URL}"}
server: {...}                 # read by `glm-agent serve` (glm_agent.serving.ServerConfig)
tracing: {endpoint: "http://127.0.0.1:4318/v1/traces", capture_content: false}   # OpenTelemetry
```

Strings may use `${VAR}` (a missing variable is an error naming it) and `${VAR:-default}`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from glm_agent._yaml_source import YamlSource, key_path, merge, read_yaml
from glm_agent.exceptions import ConfigError, UserError
from glm_agent.settings import ModelSettings
from glm_agent.tools._mcp_spec import MCPServerSpec
from glm_agent.tracing import TracingConfig, configure_tracing
from glm_agent.tracing._config import tracing_wanted

if TYPE_CHECKING:
    from glm_agent.agent import Agent
    from glm_agent.models.base import ChatModel
    from glm_agent.tools import ToolRegistry

__all__ = [
    "AgentConfig",
    "KnowledgeConfig",
    "LimitsConfig",
    "ModelConfig",
    "ToolSpec",
    "load_agent",
    "load_agent_config",
]

DATA_DIR = ".glm-agent"
"""The data folder created beside an agent.yaml (sessions database, uploaded documents)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """The model: a model string, or a Python function scripting each turn (a `FunctionModel`)."""

    name: str | None = None
    """A model string: `test`, a checkpoint, `vllm:<url>#<model>`, `zhipu:<model>`..."""
    function: str | None = None
    """`module:function` deciding each turn (see `FunctionModel`); instead of `name`."""
    stream_function: str | None = None
    """`module:function` yielding a streamed turn (see `FunctionModel`)."""
    settings: ModelSettings = Field(default_factory=ModelSettings)
    """Default generation settings (temperature, max_tokens, tool_choice...)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Constructor arguments of the backend (api_key, timeout, mode, device...)."""


class ToolSpec(_Strict):
    """One entry of `tools:` in long form (the short form is a plain string)."""

    registry: str | None = None
    """A YAML tool registry file, relative to the agent.yaml."""
    function: str | None = None
    """A Python function as `module:function`."""


class KnowledgeConfig(_Strict):
    """The knowledge base: a folder (FAISS), or a Milvus collection that replicas share."""

    path: str | None = None
    """The knowledge base folder, relative to the agent.yaml (with Milvus: this process's
    embedding cache; default `.glm-agent/knowledge-cache`)."""
    mode: Literal["tool", "context"] = "tool"
    """`tool`: the model searches when it wants; `context`: results are put before each turn."""
    backend: Literal["faiss", "milvus"] = "faiss"
    """`faiss` (the folder) or `milvus` (every replica sees every upload)."""
    uri: str | None = None
    """Milvus: `http(s)://host:19530` (a server or cluster), or a `.db` path relative to the
    agent.yaml (Milvus Lite, one process)."""
    collection: str = Field(default="glm_agent", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Milvus: the collection's name."""
    token: str | None = None
    """Milvus: credentials, e.g. `${MILVUS_TOKEN}`."""
    embedder: str | None = None
    """The embedder (`minilm`, `test`, `openai:MODEL@URL`, a local model); default: the one the
    knowledge base was built with."""
    per_document: int | None = Field(default=1, ge=1)
    """Most passages per document in results and citations (null: no limit)."""

    def open(self, base_dir: Path) -> Any:
        """The `KnowledgeBase` this section describes (paths relative to `base_dir`)."""
        from glm_agent.retrieval import KnowledgeBase

        folder = base_dir / (self.path or f"{DATA_DIR}/knowledge-cache")
        uri = self.uri
        if uri is not None and not uri.startswith(("http://", "https://", "tcp://", "unix:")):
            uri = str((base_dir / uri).resolve())
        return KnowledgeBase(
            folder.resolve(),
            embedder=self.embedder,
            backend=self.backend,
            uri=uri,
            collection=self.collection,
            token=self.token,
            per_document=self.per_document,
        )


class LimitsConfig(_Strict):
    """Limits of one run."""

    max_steps: int = Field(default=10, ge=1)
    """Most model turns."""
    retries: int = Field(default=2, ge=0)
    """Correctable failures allowed per tool in one run."""
    request_limit: int | None = Field(default=None, ge=1)
    """Most model requests."""
    input_tokens_limit: int | None = Field(default=None, ge=1)
    """Most input tokens over all requests."""
    output_tokens_limit: int | None = Field(default=None, ge=1)
    """Most output tokens over all requests."""
    total_tokens_limit: int | None = Field(default=None, ge=1)
    """Most tokens over all requests."""
    model_timeout: float | None = Field(default=None, gt=0)
    """Seconds one model request may take."""
    run_timeout: float | None = Field(default=None, gt=0)
    """Seconds one whole run may take when served."""


class AgentConfig(_Strict):
    """The contents of an agent.yaml."""

    name: str = Field(default="agent", pattern=r"^[A-Za-z0-9_.\-]+$")
    """The agent's name (the `model` clients ask the server for)."""
    description: str = ""
    """What the agent is for (listed by the server)."""
    model: str | ModelConfig = "test"
    """A model string or a `ModelConfig` mapping."""
    system_prompt: str | None = None
    """Instructions placed first in every conversation."""
    system_prompt_file: str | None = None
    """A file holding the system prompt, relative to the agent.yaml."""
    tools: list[str | ToolSpec] = Field(default_factory=list)
    """YAML registry files (`*.yaml`) and Python functions (`module:function`)."""
    mcp: dict[str, MCPServerSpec] = Field(default_factory=dict)
    """MCP servers whose tools the agent gets, by name (`MCPServerSpec`; started by the first
    run, stopped with the agent)."""
    knowledge: str | KnowledgeConfig | None = None
    """The knowledge base folder, or a `KnowledgeConfig`."""
    memory: str | None = None
    """A session store URL; default SQLite in `.glm-agent/` beside the file; `none` for none."""
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    """Run limits."""
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Named overlays merged over the top level by `load_agent(..., environment=)`."""
    server: dict[str, Any] | None = None
    """Server settings for `glm-agent serve` (validated by `glm_agent.serving.ServerConfig`)."""
    tracing: TracingConfig | None = None
    """OpenTelemetry export of the agent's spans (without it, the `OTEL_*` variables decide)."""
    path: Path | None = Field(default=None, exclude=True)
    """The file it was read from (set by the loader)."""
    _source: YamlSource | None = PrivateAttr(default=None)
    _environment: str | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths are resolved from."""
        return self.path.parent if self.path is not None else Path.cwd()

    def memory_url(self) -> str | None:
        """The session store URL with relative SQLite paths made absolute (None: no memory)."""
        url = self.memory
        if url is None:
            url = f"sqlite:///{DATA_DIR}/sessions.db"
        if url.strip().lower() in ("none", "off", "false", ""):
            return None
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rest = url[len("sqlite:///") :]
            if not rest.startswith(":memory:"):
                target = self.base_dir / rest
                target.parent.mkdir(parents=True, exist_ok=True)
                return "sqlite:///" + str(target.resolve())
        return url

    def build(self) -> Agent[Any]:
        """The `Agent` this configuration describes."""
        from glm_agent.agent import Agent
        from glm_agent.results import UsageLimits

        self.configure_tracing()
        lim = self.limits
        settings = self._model_settings()
        usage = UsageLimits(
            request_limit=lim.request_limit,
            input_tokens_limit=lim.input_tokens_limit,
            output_tokens_limit=lim.output_tokens_limit,
            total_tokens_limit=lim.total_tokens_limit,
        )
        extra: dict[str, Any] = {}
        memory = self.memory_url()
        if memory is not None:
            extra["memory"] = _open_memory(memory)
        if self.knowledge is not None:
            kb = self.knowledge
            cfg = kb if isinstance(kb, KnowledgeConfig) else KnowledgeConfig(path=kb)
            if cfg.backend == "milvus" and not cfg.uri:
                raise self._error("backend milvus needs a uri", "knowledge.uri")
            try:
                extra["knowledge"] = cfg.open(self.base_dir)
            except UserError as e:
                raise self._error(str(e), "knowledge") from None
            extra["knowledge_mode"] = cfg.mode
        return Agent(
            self._model(),
            tools=self._tools(),
            system_prompt=self._system_prompt(),
            model_settings=settings,
            max_steps=lim.max_steps,
            retries=lim.retries,
            usage_limits=usage if usage.model_dump(exclude_none=True) else None,
            name=self.name,
            **extra,
        )

    def configure_tracing(self) -> bool:
        """Install the tracer provider the `tracing:` section (or the `OTEL_*` environment)
        asks for, once per process; see `glm_agent.tracing.configure_tracing`.

        Returns:
            Whether a provider was installed by this call.
        """
        if self.tracing is None and not tracing_wanted():
            return False
        try:
            return configure_tracing(self.tracing, service_name=self.name)
        except UserError as e:
            raise self._error(str(e), "tracing") from None

    # --- parts -----------------------------------------------------------------------------

    def _model_settings(self) -> ModelSettings:
        settings = self.model.settings if isinstance(self.model, ModelConfig) else ModelSettings()
        if self.limits.model_timeout is not None and settings.timeout is None:
            settings = settings.merged(ModelSettings(timeout=self.limits.model_timeout))
        return settings

    def _model(self) -> ChatModel:
        from glm_agent.models.function import FunctionModel
        from glm_agent.models.resolve import resolve_model

        m = self.model if isinstance(self.model, ModelConfig) else ModelConfig(name=self.model)
        if m.function or m.stream_function:
            return FunctionModel(
                self._import(m.function, "model.function") if m.function else None,
                stream_function=(
                    self._import(m.stream_function, "model.stream_function")
                    if m.stream_function
                    else None
                ),
                name=self.name,
                **m.options,
            )
        if not m.name:
            raise self._error("give a model string in model.name, or model.function", "model")
        try:
            return resolve_model(m.name, **m.options)
        except UserError as e:
            raise self._error(str(e), "model") from None

    def _system_prompt(self) -> str | None:
        if self.system_prompt_file is None:
            return self.system_prompt
        file = self.base_dir / self.system_prompt_file
        try:
            return file.read_text(encoding="utf-8")
        except OSError as e:
            raise self._error(f"cannot read {file}: {e.strerror}", "system_prompt_file") from None

    def _tools(self) -> ToolRegistry:
        from glm_agent.tools import ToolRegistry

        registry = ToolRegistry()
        for i, entry in enumerate(self.tools):
            key = f"tools.{i}"
            spec = entry if isinstance(entry, ToolSpec) else None
            text = entry if isinstance(entry, str) else None
            if spec is not None:
                text = spec.registry or spec.function
                if not text or (spec.registry and spec.function):
                    raise self._error("give exactly one of registry or function", key)
            assert text is not None
            if text.endswith((".yaml", ".yml")) or (spec is not None and spec.registry):
                registry.update(self._registry(text, key))  # its MCP servers too
            else:
                registry.add(self._import(text, key))
        for server in self._mcp_servers():
            registry.add_source(server)
        return registry

    def _mcp_servers(self) -> list[Any]:
        from glm_agent.tools import MCPServer
        from glm_agent.tools._yaml_mcp import paths_from

        # `${VAR}`s were filled in when the file was read; paths are relative to the file.
        base = self.base_dir.resolve()
        return [MCPServer.from_spec(n, paths_from(s, base)) for n, s in self.mcp.items()]

    def _registry(self, file: str, key: str) -> ToolRegistry:
        import glm_agent.tools as tools_pkg

        loader: Callable[..., ToolRegistry] | None = getattr(tools_pkg, "load_registry", None)
        if loader is None:
            from glm_agent.tools._yaml_loader import load_registry

            loader = load_registry
        target = self.base_dir / file
        if not target.is_file():
            raise self._error(f"tool registry {str(target)!r} does not exist", key)
        return loader(target, environment=self._environment)

    def _import(self, spec: str, key: str) -> Any:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise self._error(f"{spec!r} must look like module:function", key)
        folder = str(self.base_dir.resolve())
        if folder not in sys.path:
            # Users' tools modules sit beside their agent.yaml, as in `python agent.py`.
            sys.path.insert(0, folder)
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise self._error(f"cannot load {spec!r}: {e}", key) from None
        return obj

    def _line(self, key: str) -> int | None:
        path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        return None if self._source is None else self._source.line(path)

    def _error(self, message: str, key: str) -> ConfigError:
        return ConfigError(
            message, path=str(self.path) if self.path else None, line=self._line(key), key=key
        )


def _open_memory(url: str) -> Any:
    """A session store for `url`; absolute SQLite paths without options are opened directly
    because `open_store` loses the leading slash of `sqlite:////abs/path` URLs."""
    if url.startswith("sqlite:////") and "?" not in url:
        from glm_agent.memory import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :])
    return url


def load_agent_config(path: str | Path, environment: str | None = None) -> AgentConfig:
    """Read and validate an agent.yaml (with `environment`'s overlay merged in).

    Raises:
        ConfigError: naming the file, the line and the key that is wrong.
    """
    source = read_yaml(path).substitute_env()
    data = source.mapping()
    if environment is not None:
        envs = data.get("environments") or {}
        if environment not in envs:
            raise source.error(
                f"unknown environment {environment!r}; environments: "
                f"{', '.join(sorted(envs)) or '(none)'}",
                ("environments",),
            )
        data = merge(data, envs[environment])
    try:
        config = AgentConfig.model_validate({**data, "path": Path(path)})
    except ValidationError as e:
        # With unions (`model: str | ModelConfig`) every branch reports an error; the deepest
        # one is the branch the user meant.
        located = [(key_path(err["loc"]), err) for err in e.errors()]
        loc, err = max(located, key=lambda pair: len(pair[0]))
        raise ConfigError(
            err["msg"], path=source.path, line=source.line(loc), key=".".join(map(str, loc)) or None
        ) from None
    config._source = source
    config._environment = environment
    return config


def load_agent(path: str | Path, environment: str | None = None) -> Agent[Any]:
    """The `Agent` an agent.yaml describes (see the module docstring for the schema).

    Args:
        path: The agent.yaml.
        environment: An overlay of `environments:` to merge over the top level.

    Raises:
        ConfigError: naming the file, the line and the key that is wrong.
    """
    return load_agent_config(path, environment).build()
