"""Messages between glm-agent and LangChain: roles, tool calls, reasoning, images and usage.

Images go to LangChain as OpenAI `image_url` blocks (what LangChain's OpenAI-compatible chat
models send as they are) and come back from those, from LangChain 1.x standard `image` blocks
(`url`, or `base64` with `mime_type`) and from 0.3's (`source_type` `url` / `base64`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core import messages as lc

from glm_agent._parts import parts_from_openai, parts_to_openai
from glm_agent.exceptions import UserError
from glm_agent.messages import (
    AssistantMessage,
    Content,
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
    new_call_id,
)

__all__ = [
    "assistant_from_langchain",
    "content_from_langchain",
    "message_text",
    "messages_from_langchain",
    "messages_to_langchain",
    "reasoning_of",
    "response_to_langchain",
    "usage_of",
]


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
    )


def _block(b: Any) -> Any:
    """A LangChain content block in OpenAI's part shape (standard image / video blocks)."""
    if not isinstance(b, dict) or b.get("type") not in ("image", "video"):
        return b
    kind = f"{b['type']}_url"
    url = b.get("url")
    data = b.get("base64") or (b.get("data") if b.get("source_type") == "base64" else None)
    if url is None and data is not None:
        url = f"data:{b.get('mime_type') or 'image/png'};base64,{data}"
    if url is None:
        url = b.get("data") if b.get("source_type") == "url" else None
    return {"type": kind, kind: {"url": url}}


def content_from_langchain(content: Any, where: str) -> Content:
    """A LangChain message's content as ours: text, or parts when it holds images or videos.

    Raises:
        UserError: a block glm-agent cannot read (an image without a URL or data...).
    """
    if isinstance(content, str):
        return content
    blocks = [
        _block(b)
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") not in ("reasoning",))
    ]
    known = [b for b in blocks if isinstance(b, str) or b.get("type") in _TAKEN]
    try:
        return parts_from_openai(known, where)
    except ValueError as e:
        raise UserError(str(e)) from None


_TAKEN = ("text", "image_url", "video_url")


def reasoning_of(message: lc.BaseMessage) -> str | None:
    value = message.additional_kwargs.get("reasoning_content")
    if isinstance(value, str):
        return value
    if isinstance(message.content, list):  # LangChain 1.x standard reasoning blocks
        parts = [
            str(b.get("reasoning", ""))
            for b in message.content
            if isinstance(b, dict) and b.get("type") == "reasoning"
        ]
        return "".join(parts) or None
    return None


def messages_to_langchain(messages: Sequence[Message]) -> list[lc.BaseMessage]:
    """glm-agent messages as LangChain messages (reasoning in `reasoning_content`)."""
    out: list[lc.BaseMessage] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append(lc.SystemMessage(content=m.content))
        elif isinstance(m, UserMessage):
            out.append(lc.HumanMessage(content=parts_to_openai(m.content)))  # type: ignore[arg-type]
        elif isinstance(m, AssistantMessage):
            extra = {"reasoning_content": m.reasoning} if m.reasoning is not None else {}
            calls = [
                lc.ToolCall(name=c.name, args=_args(c), id=c.id, type="tool_call")
                for c in m.tool_calls
            ]
            out.append(
                lc.AIMessage(content=m.content or "", tool_calls=calls, additional_kwargs=extra)
            )
        else:
            out.append(
                lc.ToolMessage(
                    content=parts_to_openai(m.content),  # type: ignore[arg-type]
                    tool_call_id=m.tool_call_id,
                    name=m.name,
                    status="error" if m.is_error else "success",
                )
            )
    return out


def _args(call: ToolCall) -> dict[str, Any]:
    try:
        return call.args_dict()
    except ValueError:  # LangChain needs a dict; keep the raw text where a reader can see it
        return {"__raw_arguments__": call.arguments}


def assistant_from_langchain(m: lc.AIMessage) -> AssistantMessage:
    calls = [
        ToolCall(
            id=c.get("id") or new_call_id(),
            name=c["name"],
            arguments=json.dumps(c["args"], ensure_ascii=False),
        )
        for c in m.tool_calls
    ]
    # Arguments that were not valid JSON still reach the loop, which reports them to the model.
    calls += [
        ToolCall(
            id=c.get("id") or new_call_id(),
            name=c.get("name") or "",
            arguments=c.get("args") or "{}",
        )
        for c in m.invalid_tool_calls
    ]
    return AssistantMessage(
        content=message_text(m.content) or None, reasoning=reasoning_of(m), tool_calls=tuple(calls)
    )


def messages_from_langchain(messages: Sequence[lc.BaseMessage]) -> list[Message]:
    """LangChain messages as glm-agent messages."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m, lc.SystemMessage):
            out.append(SystemMessage(content=message_text(m.content)))
        elif isinstance(m, lc.HumanMessage):
            out.append(UserMessage(content=content_from_langchain(m.content, "a HumanMessage")))
        elif isinstance(m, lc.AIMessage):
            out.append(assistant_from_langchain(m))
        elif isinstance(m, lc.ToolMessage):
            out.append(
                ToolMessage(
                    content=content_from_langchain(m.content, "a ToolMessage"),
                    tool_call_id=m.tool_call_id,
                    name=m.name,
                    is_error=m.status == "error",
                )
            )
        elif isinstance(m, lc.ChatMessage) and m.role in ("system", "user", "assistant"):
            cls = {"system": SystemMessage, "user": UserMessage}.get(m.role)
            content = message_text(m.content)
            out.append(cls(content=content) if cls else AssistantMessage(content=content))
        else:
            raise UserError(
                f"cannot map LangChain message {type(m).__name__}; supported: SystemMessage, "
                "HumanMessage, AIMessage, ToolMessage, ChatMessage(system|user|assistant)"
            )
    return out


def usage_of(m: lc.AIMessage) -> Usage:
    u = m.usage_metadata
    if not u:
        return Usage(requests=1)
    return Usage(input_tokens=u["input_tokens"], output_tokens=u["output_tokens"], requests=1)


def response_to_langchain(response: ModelResponse) -> lc.AIMessage:
    msg = messages_to_langchain([response.message])[0]
    assert isinstance(msg, lc.AIMessage)
    u = response.usage
    msg.usage_metadata = lc.UsageMetadata(
        input_tokens=u.input_tokens, output_tokens=u.output_tokens, total_tokens=u.total_tokens
    )
    msg.response_metadata = {
        "finish_reason": response.finish_reason,
        "model_name": response.model_name,
    }
    return msg
