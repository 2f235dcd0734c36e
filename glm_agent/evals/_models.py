"""The models and agent an evaluation runs: the agent under test (with `--model` / `--env`), the
simulated customers' model and the judge, each named by a model string, a dataset's `models:`
entry, or a scripted function beside the dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm_agent.agent_config import ModelConfig, load_agent_config
from glm_agent.evals._dataset import DatasetSpec, ModelRef, import_object
from glm_agent.exceptions import ConfigError, UserError

if TYPE_CHECKING:
    from glm_agent.agent import Agent
    from glm_agent.models.base import ChatModel
    from glm_agent.serving.bot import SupportConfig

__all__ = ["build_agent", "model_label", "open_model", "resolve_ref", "support_config"]


def resolve_ref(ref: ModelRef, dataset: DatasetSpec) -> ModelRef:
    """A dataset `models:` name replaced by what it names (model strings pass through)."""
    if isinstance(ref, str) and ref in dataset.models:
        return dataset.models[ref]
    return ref


def model_label(ref: ModelRef | None, dataset: DatasetSpec | None = None) -> str | None:
    """A short name of a model reference, for reports (`ground-truth (module:function)` for a
    name of the dataset's `models:`)."""
    if ref is None:
        return None
    if isinstance(ref, str):
        if dataset is not None and ref in dataset.models:
            return f"{ref} ({model_label(dataset.models[ref])})"
        return ref
    return ref.name or ref.function or ref.stream_function


def open_model(ref: ModelRef, dataset: DatasetSpec) -> ChatModel:
    """The `ChatModel` a reference names (scripted functions are imported beside the dataset)."""
    from glm_agent.models.function import FunctionModel
    from glm_agent.models.resolve import resolve_model

    ref = resolve_ref(ref, dataset)
    if isinstance(ref, str):
        return resolve_model(ref)
    if ref.function or ref.stream_function:
        where = dataset.base_dir
        return FunctionModel(
            import_object(ref.function, where, what="model.function") if ref.function else None,
            stream_function=import_object(ref.stream_function, where, what="stream_function")
            if ref.stream_function
            else None,
            name=model_label(ref) or "function",
            **ref.options,
        )
    if not ref.name:
        raise UserError("a model mapping needs name (a model string) or function")
    return resolve_model(ref.name, **ref.options)


def build_agent(
    agent_yaml: Path,
    dataset: DatasetSpec,
    *,
    environment: str | None = None,
    model: ModelRef | None = None,
) -> Agent[Any]:
    """The agent of `agent_yaml` (with its `environment` overlay), without memory (the
    evaluation keeps each conversation), its model replaced by `model` when given."""
    config = load_agent_config(agent_yaml, environment)
    config.memory = "none"
    if model is not None:
        ref = resolve_ref(model, dataset)
        if isinstance(ref, ModelConfig) and (ref.function or ref.stream_function):
            # Scripted models live beside the dataset, not the agent.yaml.
            folder = str(dataset.base_dir.resolve())
            if folder not in sys.path:
                sys.path.insert(0, folder)
        config.model = ref
    return config.build()


def support_config(agent_yaml: Path) -> SupportConfig:
    """The support.yaml beside `agent_yaml` (defaults when there is none)."""
    from pydantic import ValidationError

    from glm_agent._yaml_source import key_path, read_yaml
    from glm_agent.serving.bot import SupportConfig, find_support_config

    file = find_support_config(agent_yaml)
    if file is None:
        return SupportConfig()
    source = read_yaml(file).substitute_env()
    try:
        return SupportConfig.model_validate(source.mapping())
    except ValidationError as e:
        err = e.errors()[0]
        loc = key_path(err["loc"])
        raise ConfigError(
            err["msg"], path=str(file), line=source.line(loc), key=".".join(map(str, loc)) or None
        ) from None
