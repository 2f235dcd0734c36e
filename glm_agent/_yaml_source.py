"""The one YAML reader of glm-agent's config files (agent.yaml, tool registries, support.yaml,
server settings): `yaml.safe_load` semantics, the line of every key kept for error messages,
duplicate keys refused, and `${ENV}` / `${ENV:-default}` substitution where a file asks for it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from glm_agent.exceptions import ConfigError

__all__ = ["ENV_VAR", "KeyPath", "YamlSource", "key_path", "key_text", "merge", "read_yaml"]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the root."""

ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""`${NAME}` or `${NAME:-default}` in a string value."""


def key_text(path: KeyPath) -> str:
    """A key path as `tools[0].http.url`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class YamlSource:
    """A parsed YAML document and the line (1-based) where each key path starts."""

    path: str
    """The file it was read from."""
    data: Any
    """The document, as `yaml.safe_load` returns it."""
    lines: dict[KeyPath, int] = field(default_factory=dict)
    """Line of each mapping key and list item, by key path."""

    def line(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, message: str, path: KeyPath) -> ConfigError:
        """A `ConfigError` pointing at `path` in this file."""
        return ConfigError(
            message, path=self.path, line=self.line(path), key=key_text(path) or None
        )

    def mapping(self) -> dict[str, Any]:
        """The document as a mapping (an empty file is an empty one).

        Raises:
            ConfigError: The document is a list or a scalar.
        """
        if self.data is None:
            return {}
        if not isinstance(self.data, dict):
            raise self.error(f"expected a mapping at the top, got {type(self.data).__name__}", ())
        return self.data

    def substitute_env(self, env: Mapping[str, str] | None = None) -> YamlSource:
        """This document with every `${NAME}` / `${NAME:-default}` in its strings replaced.

        Raises:
            ConfigError: A variable without a default is not set (names the file, line, key).
        """
        env = os.environ if env is None else env

        def walk(value: Any, path: KeyPath) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, (*path, str(k))) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, (*path, i)) for i, v in enumerate(value)]
            if not isinstance(value, str) or "${" not in value:
                return value

            def one(m: re.Match[str]) -> str:
                name, default = m.group(1), m.group(2)
                if name in env:
                    return env[name]
                if default is not None:
                    return default
                raise self.error(
                    f"environment variable {name!r} is not set "
                    f"(write ${{{name}:-default}} for a default)",
                    path,
                )

            return ENV_VAR.sub(one, value)

        return YamlSource(self.path, walk(self.data, ()), dict(self.lines))


def key_path(loc: tuple[str | int, ...]) -> KeyPath:
    """A pydantic error location without the names of union branches (`str`, `ModelConfig`)."""
    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p[:1].isupper() or p in ("str", "function-after")))
    )


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, mappings merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class _Builder(SafeConstructor):
    """Builds plain data from composed nodes, recording the line of each key on the way."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.lines: dict[KeyPath, int] = {}

    def build(self, node: yaml.Node, where: KeyPath) -> Any:
        self.lines.setdefault(where, node.start_mark.line + 1)
        if node.tag not in (_MAP, _SEQ):
            # Scalars and explicitly tagged collections: SafeConstructor decides, refusing
            # every tag `yaml.safe_load` refuses (`!!python/...`).
            return self.construct_object(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            self.flatten_mapping(node)  # resolves `<<` merge keys, as safe_load does
            merged = len(node.value) - explicit  # merged pairs come first; explicit keys win
            out: dict[Any, Any] = {}
            seen: set[Any] = set()
            for i, (key_node, value_node) in enumerate(node.value):
                key = self.construct_object(key_node, deep=True)
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise ConfigError(
                        f"mapping keys must be scalars, got {type(key).__name__}",
                        path=self.path,
                        line=key_line,
                        key=key_text(where) or None,
                    )
                sub = (*where, str(key))
                if i >= merged:
                    if key in seen:
                        raise ConfigError(
                            f"duplicate key {key!r}",
                            path=self.path,
                            line=key_line,
                            key=key_text(sub),
                        )
                    seen.add(key)
                self.lines[sub] = key_line
                out[key] = self.build(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*where, i)) for i, item in enumerate(node.value)]
        return self.construct_object(node, deep=True)


def read_yaml(path: str | Path, text: str | None = None) -> YamlSource:
    """Parse one YAML document, keeping the line of each key.

    Args:
        path: The file (read unless `text` is given; used in error messages either way).
        text: The document's text, when already in memory.

    Raises:
        ConfigError: The file is missing or is not valid YAML (with its line).
    """
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the file: {e.strerror or e}", path=name) from e
    builder = _Builder(name)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if node is None else builder.build(node, ())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {e.problem or e}", path=name, line=line) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", path=name) from e
    return YamlSource(name, data, builder.lines)
