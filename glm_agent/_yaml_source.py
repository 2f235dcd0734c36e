"""YAML config files read with line numbers: `${ENV}` substitution and file:line (key) errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from glm_agent.exceptions import ConfigError

__all__ = ["KeyPath", "key_path", "merge", "nearest_line", "read_yaml"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
KeyPath = tuple[str | int, ...]
"""Where a value sits in a file: mapping keys and list indexes from the top."""


def key_path(loc: tuple[str | int, ...]) -> KeyPath:
    """A pydantic error location without the names of union branches (`str`, `ModelConfig`)."""
    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p[:1].isupper() or p in ("str", "function-after")))
    )


def nearest_line(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its closest parent that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, str(key_node.value))
            lines[sub] = key_node.start_mark.line + 1
            _record_lines(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _record_lines(item, (*path, i), lines)


def _substitute(value: Any, path: KeyPath, lines: dict[KeyPath, int], file: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*path, str(k)), lines, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*path, i), lines, file) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    import os

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {name!r} is not set (write ${{{name}:-default}} for a default)",
            path=file,
            line=nearest_line(lines, path),
            key=".".join(map(str, path)),
        )

    return _ENV.sub(repl, value)


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """A YAML mapping with `${ENV}` substituted, and the line of every key path.

    Raises:
        ConfigError: the file is missing, not YAML, not a mapping, or names an unset variable.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror}", path=file) from None
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            f"not valid YAML: {getattr(e, 'problem', e)}", path=file, line=line
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top, got {type(data).__name__}", path=file)
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return _substitute(data, (), lines, file), lines


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, mappings merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
