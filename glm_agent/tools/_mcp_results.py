"""What an MCP tool result becomes for the model: text it can read, or structured data.

MCP results hold content blocks (text, images, audio, links to resources, embedded resources),
optional structured content, and an `isError` flag. GLM models read text, so every block is
rendered as text: media as a short note of its type and size (the data itself would only cost
context), resources with their URI, embedded text resources in full. A result with structured
content and no text of its own is returned as that data (the model reads it as JSON; Python
callers get the dict). `isError` results raise `ModelRetry`: the model is told and may correct
itself, within the tool's retry budget.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from glm_agent.exceptions import ModelRetry

__all__ = ["block_text", "result_value"]


def _size(data: str) -> str:
    try:
        n = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        n = len(data)
    return f"{n} bytes" if n < 10_000 else f"{n / 1024:.0f} KiB"


def block_text(block: Any) -> str:
    """One content block as text for the model (duck-typed on the block's `type`)."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind}: {block.mime_type}, {_size(block.data)}]"
    if kind == "resource_link":
        what = block.name or block.uri
        mime = f", {block.mime_type}" if getattr(block, "mime_type", None) else ""
        about = f": {block.description}" if getattr(block, "description", None) else ""
        return f"[resource link: {what} <{block.uri}>{mime}]{about}"
    if kind == "resource":
        res = block.resource
        mime = f", {res.mime_type}" if getattr(res, "mime_type", None) else ""
        text = getattr(res, "text", None)
        if text is not None:
            return f"[resource <{res.uri}>{mime}]\n{text}"
        return f"[resource <{res.uri}>{mime}, {_size(res.blob)}]"
    dumped = block.model_dump(mode="json") if hasattr(block, "model_dump") else block
    return json.dumps(dumped, ensure_ascii=False)


def result_value(result: Any, tool: str) -> Any:
    """The value a `CallToolResult` stands for: its structured content when it has no other
    blocks than that content as JSON text, else its blocks as text, one per line.

    Raises:
        ModelRetry: The server flagged the result as an error (`isError`); the message is its
            text, for the model.
    """
    blocks = list(result.content or [])
    structured = result.structured_content
    if result.is_error:
        detail = "\n".join(block_text(b) for b in blocks) or json.dumps(structured)
        raise ModelRetry(f"tool {tool!r} failed: {detail}")
    if structured is not None and not blocks:
        return structured
    if structured is not None and all(getattr(b, "type", None) == "text" for b in blocks):
        # Servers send structured content with its JSON as text for older clients; the data is
        # the same, so Python callers get the dict.
        try:
            if all(json.loads(b.text) == structured for b in blocks):
                return structured
        except ValueError:
            pass
    return "\n".join(block_text(b) for b in blocks)
