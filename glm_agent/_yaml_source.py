"""YAML read with `yaml.safe_load` semantics, keeping the line of every key for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from glm_agent.exceptions import ConfigError

__all__ = ["KeyPath", "YamlSource", "read_yaml"]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the root."""


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
        raise ConfigError(f"invalid YAML: {e.problem or e}", path=name, line=line) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {e}", path=name) from e
    return YamlSource(name, data, builder.lines)
