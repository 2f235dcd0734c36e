"""Every kind of MCP content block as the text a model reads (the SDK's own result types)."""

from __future__ import annotations

import base64

import mcp.types as types
import pytest

from glm_agent.exceptions import ModelRetry
from glm_agent.tools._mcp_results import result_value

AUDIO = base64.b64encode(b"\x00" * 20_000).decode()


def test_blocks_become_text() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="summary"),
            types.AudioContent(type="audio", data=AUDIO, mime_type="audio/wav"),
            types.EmbeddedResource(
                type="resource",
                resource=types.BlobResourceContents(
                    uri="file:///r.bin", blob=base64.b64encode(b"abc").decode(), mime_type="x/y"
                ),
            ),
        ]
    )
    assert result_value(result, "t") == (
        "summary\n[audio: audio/wav, 20 KiB]\n[resource <file:///r.bin>, x/y, 3 bytes]"
    )


def test_structured_content() -> None:
    data = {"rows": [1, 2]}
    only = types.CallToolResult(content=[], structured_content=data)
    assert result_value(only, "t") == data
    mirrored = types.CallToolResult(
        content=[types.TextContent(type="text", text='{"rows": [1, 2]}')], structured_content=data
    )
    assert result_value(mirrored, "t") == data
    different = types.CallToolResult(
        content=[types.TextContent(type="text", text="two rows")], structured_content=data
    )
    assert result_value(different, "t") == "two rows"


def test_is_error_asks_the_model_to_retry() -> None:
    failed = types.CallToolResult(
        content=[types.TextContent(type="text", text="quota exceeded")], is_error=True
    )
    with pytest.raises(ModelRetry, match=r"^tool 't' failed: quota exceeded$"):
        result_value(failed, "t")
    bare = types.CallToolResult(content=[], structured_content={"code": 7}, is_error=True)
    with pytest.raises(ModelRetry, match='"code": 7'):
        result_value(bare, "t")
