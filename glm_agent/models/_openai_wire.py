"""The OpenAI wire protocol as pure functions: request bodies in, responses and stream events out.

No I/O here: `openai_compat.py` sends the bodies and feeds what comes back into these parsers, so
the sync and async transports share every byte of protocol logic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from glm_agent.exceptions import ModelError, UserError
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
    Usage,
    messages_to_openai,
    new_call_id,
)
from glm_agent.settings import ModelSettings

if TYPE_CHECKING:
    from glm_agent.glm import GLMFormat, GLMStreamParser
    from glm_agent.models._tool_repair import CallRepair

Provider = Literal["openai", "vllm", "sglang", "zhipu"]
"""Which server dialect to speak; it decides how thinking and sampling extras are sent."""
FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]

PROVIDERS: tuple[Provider, ...] = ("openai", "vllm", "sglang", "zhipu")
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "abort": "cancelled",
    # Zhipu's content filter and its own upstream failures.
    "sensitive": "error",
    "network_error": "error",
}


# --- request bodies ---------------------------------------------------------------------------


def _tool_choice(choice: str, tools: Sequence[ToolDefinition]) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    names = [t.name for t in tools]
    if choice not in names:
        raise UserError(
            f"tool_choice {choice!r} names no offered tool; use auto, none, required "
            f"or one of: {', '.join(names) or '(no tools offered)'}"
        )
    return {"type": "function", "function": {"name": choice}}


def _sampling(settings: ModelSettings, provider: Provider) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(settings, key)
        if value is not None:
            body[key] = value
    extras = {"top_k": settings.top_k, "repetition_penalty": settings.repetition_penalty}
    for key, value in extras.items():
        if value is None:
            continue
        if provider == "zhipu":
            raise UserError(
                f"{key} is not supported by Zhipu's API; settings it accepts: temperature, "
                "top_p, max_tokens, stop, tool_choice, enable_thinking"
            )
        body[key] = value  # vLLM and SGLang read these as top-level sampling params
    return body


def _merge_extra(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def _raw_base64(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Zhipu's API documents an inline image as its bare base64 (no `data:` prefix)."""
    for m in messages:
        if not isinstance(m.get("content"), list):
            continue
        for part in m["content"]:
            ref = part.get("image_url")
            if isinstance(ref, dict) and str(ref.get("url", "")).startswith("data:"):
                ref["url"] = ref["url"].split(",", 1)[1]
    return messages


def chat_body(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition],
    settings: ModelSettings,
    provider: Provider,
    *,
    stream: bool,
) -> dict[str, Any]:
    """The JSON body of a `/chat/completions` request (server-side GLM tool-call parsing).

    Images and videos go as OpenAI content parts in user and tool messages (vLLM and SGLang
    read `data:` and `http(s)` URLs; GLM-4.6V also reads images in tool results); to Zhipu, an
    inline image goes as bare base64, as its API documents.
    """
    wire = messages_to_openai(messages)
    body: dict[str, Any] = {
        "model": model,
        "messages": _raw_base64(wire) if provider == "zhipu" else wire,
    }
    if tools:
        body["tools"] = [t.to_openai() for t in tools]
        if settings.tool_choice is not None:
            body["tool_choice"] = _tool_choice(settings.tool_choice, tools)
        if settings.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = settings.parallel_tool_calls
    body.update(_sampling(settings, provider))
    if settings.stop:
        body["stop"] = list(settings.stop)
    if settings.enable_thinking is not None:
        if provider == "zhipu":
            body["thinking"] = {"type": "enabled" if settings.enable_thinking else "disabled"}
        else:  # vLLM, SGLang (and llama.cpp) hand these to the chat template
            body["chat_template_kwargs"] = {"enable_thinking": settings.enable_thinking}
    body["stream"] = stream
    if stream and provider != "zhipu":  # Zhipu always sends usage in its last chunk
        body["stream_options"] = {"include_usage": True}
    return _merge_extra(body, settings.extra)


def completion_body(
    model: str,
    prompt: str,
    settings: ModelSettings,
    provider: Provider,
    facts: Any,
    *,
    stream: bool,
) -> dict[str, Any]:
    """The JSON body of a raw `/completions` request for a prompt glm-agent rendered itself."""
    if provider == "zhipu":
        raise UserError("Zhipu's API has no /completions endpoint; use mode='chat'")
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    body.update(_sampling(settings, provider))
    body["stop"] = list(dict.fromkeys([*facts.stop_strings, *(settings.stop or [])]))
    if facts.stop_token_ids:
        body["stop_token_ids"] = list(facts.stop_token_ids)
    # GLM-4.5+ write <think> and <tool_call> as special tokens: the parser must see them.
    body["skip_special_tokens"] = False
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    # chat_template_kwargs went into the prompt glm-agent rendered; /completions has no template.
    extra = {k: v for k, v in settings.extra.items() if k != "chat_template_kwargs"}
    return _merge_extra(body, extra)


# --- responses --------------------------------------------------------------------------------


def decode_json(text: str, what: str) -> dict[str, Any]:
    """Parse a JSON object from the server or raise a `ModelError` quoting it."""
    try:
        data = json.loads(text)
    except ValueError as e:
        short = text if len(text) <= 300 else text[:300] + "..."
        raise ModelError(f"malformed JSON in {what}: {e}; got: {short!r}") from e
    if not isinstance(data, dict):
        raise ModelError(f"expected a JSON object in {what}, got {type(data).__name__}")
    # OpenAI and newer vLLM write {"error": {...}}; older vLLM / SGLang {"object": "error", ...}.
    if "error" in data and not data.get("choices"):
        raise ModelError(f"server reported an error in {what}: {json.dumps(data['error'])}")
    if data.get("object") == "error":
        raise ModelError(f"server reported an error in {what}: {data.get('message', data)}")
    return data


def usage_from(data: dict[str, Any]) -> Usage | None:
    """`Usage` from a response's or chunk's `usage` object, if it has one."""
    u = data.get("usage")
    if not isinstance(u, dict):
        return None
    return Usage(
        input_tokens=int(u.get("prompt_tokens") or 0),
        output_tokens=int(u.get("completion_tokens") or 0),
        requests=1,
    )


def finish_reason(raw: str | None, message: AssistantMessage) -> FinishReason:
    """Our finish reason for the server's; a turn with tool calls always ends in `tool_calls`."""
    if message.tool_calls:
        return "tool_calls"
    return _FINISH.get(raw or "stop", "stop")


def _first_choice(data: dict[str, Any], what: str) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelError(f"no choices in {what}: {json.dumps(data)[:300]}")
    return choices[0]


def parse_chat(data: dict[str, Any], model: str, repair: CallRepair | None = None) -> ModelResponse:
    """A `ModelResponse` from a non-streamed chat completion (its calls checked by `repair`)."""
    choice = _first_choice(data, "chat completion")
    msg = choice.get("message") or {}
    calls = tuple(
        ToolCall(
            id=c.get("id") or new_call_id(),
            name=c["function"]["name"],
            arguments=c["function"].get("arguments") or "{}",
        )
        for c in msg.get("tool_calls") or []
    )
    message = AssistantMessage(
        content=msg.get("content") or None,
        reasoning=msg.get("reasoning_content") or msg.get("reasoning") or None,
        tool_calls=calls,
    )
    if repair is not None:
        message = repair.repair(message)
    return ModelResponse(
        message=message,
        usage=usage_from(data) or Usage(requests=1),
        finish_reason=finish_reason(choice.get("finish_reason"), message),
        model_name=data.get("model") or model,
    )


def parse_completion(
    data: dict[str, Any],
    model: str,
    fmt: GLMFormat,
    tools: Sequence[ToolDefinition],
    enable_thinking: bool | None,
) -> ModelResponse:
    """A `ModelResponse` from a non-streamed raw completion, parsed with the GLM format."""
    choice = _first_choice(data, "completion")
    message = fmt.parse(choice.get("text") or "", tools, enable_thinking=enable_thinking)
    return ModelResponse(
        message=message,
        usage=usage_from(data) or Usage(requests=1),
        finish_reason=finish_reason(choice.get("finish_reason"), message),
        model_name=data.get("model") or model,
    )


# --- streams ----------------------------------------------------------------------------------


@dataclass
class _OpenCall:
    index: int
    id: str
    name: str = ""
    args: list[str] = field(default_factory=list)
    started: bool = False


class ChatStreamState:
    """Accumulates chat-completion chunks into stream events and the final response.

    With a `repair` (see `_tool_repair`), content deltas go through glm-agent's GLM stream parser
    (markup the server left there becomes calls), the server's calls are checked at the end, and
    `retry_one_shot` says whether the server's streaming parser lost calls.
    """

    def __init__(self, model: str, repair: CallRepair | None = None) -> None:
        self.model = model
        self.model_name = ""
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, _OpenCall] = {}
        self.usage: Usage | None = None
        self.raw_finish: str | None = None
        self.repair = repair
        self._parser = repair.stream_parser() if repair is not None else None
        self._local: dict[int, int] = {}  # the GLM parser's call index → this stream's
        self.next_index = 0
        """The index the next tool call of this stream gets."""
        self.retry_one_shot = False
        """Set by `finish()`: the server's streaming parser failed; ask again without streaming."""

    def _alloc(self) -> int:
        self.next_index += 1
        return self.next_index - 1

    def feed(self, chunk: dict[str, Any]) -> list[ModelStreamEvent]:
        """Events for one decoded chunk."""
        self.model_name = chunk.get("model") or self.model_name
        self.usage = usage_from(chunk) or self.usage
        out: list[ModelStreamEvent] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought:
                self.reasoning.append(thought)
                out.append(ReasoningDelta(content=thought))
            if delta.get("content"):
                if self._parser is not None:
                    out.extend(self._from_parser(self._parser.feed(delta["content"])))
                else:
                    self.text.append(delta["content"])
                    out.append(TextDelta(content=delta["content"]))
            for piece in delta.get("tool_calls") or []:
                out.extend(self._tool_delta(piece))
            self.raw_finish = choice.get("finish_reason") or self.raw_finish
        return out

    def _from_parser(self, events: list[ModelStreamEvent]) -> list[ModelStreamEvent]:
        """The GLM parser's events with its call indices moved into this stream's."""
        out: list[ModelStreamEvent] = []
        for e in events:
            if isinstance(e, ToolCallStart):
                if e.index not in self._local:
                    self._local[e.index] = self._alloc()
                out.append(e.model_copy(update={"index": self._local[e.index]}))
            elif isinstance(e, ToolCallArgsDelta | ToolCallEnd):
                out.append(e.model_copy(update={"index": self._local[e.index]}))
            else:
                out.append(e)
        return out

    def _tool_delta(self, piece: dict[str, Any]) -> list[ModelStreamEvent]:
        server_index = piece.get("index", len(self.calls))
        call = self.calls.get(server_index)
        if call is None:
            call = _OpenCall(index=self._alloc(), id=piece.get("id") or new_call_id())
            self.calls[server_index] = call
        fn = piece.get("function") or {}
        call.name += fn.get("name") or ""
        out: list[ModelStreamEvent] = []
        if not call.started and call.name:
            call.started = True
            out.append(ToolCallStart(index=call.index, id=call.id, name=call.name))
            if call.args:  # arguments that came before the name
                out.append(
                    ToolCallArgsDelta(index=call.index, id=call.id, delta="".join(call.args))
                )
        if fn.get("arguments"):
            call.args.append(fn["arguments"])
            if call.started:
                out.append(ToolCallArgsDelta(index=call.index, id=call.id, delta=fn["arguments"]))
        return out

    def finish(self) -> list[ModelStreamEvent]:
        """Closing events: every open tool call ends, then `ResponseDone`."""
        out: list[ModelStreamEvent] = []
        received: list[ToolCall] = []
        calls: list[ToolCall] = []
        for call in sorted(self.calls.values(), key=lambda c: c.index):
            if not call.name:
                raise ModelError(f"stream ended with tool call {call.index} missing its name")
            done = ToolCall(id=call.id, name=call.name, arguments="".join(call.args) or "{}")
            received.append(done)
            if self.repair is not None:
                done = self.repair.fix_call(done)
            calls.append(done)
            out.append(ToolCallEnd(index=call.index, call=done))
        content = "".join(self.text) or None
        reasoning = "".join(self.reasoning) or None
        if self._parser is not None:
            out.extend(self._from_parser(self._parser.finish()))
            found = self._parser.result
            content = found.content
            reasoning = (reasoning or "") + (found.reasoning or "") or None
            calls += found.tool_calls
        if self.repair is not None:
            self.retry_one_shot = self.repair.stream_failed(received, calls, self.raw_finish)
        message = AssistantMessage(content=content, reasoning=reasoning, tool_calls=tuple(calls))
        response = ModelResponse(
            message=message,
            usage=self.usage or Usage(requests=1),
            finish_reason=finish_reason(self.raw_finish, message),
            model_name=self.model_name or self.model,
        )
        out.append(ResponseDone(response=response))
        return out


class CompletionStreamState:
    """Accumulates raw-completion chunks through the GLM stream parser."""

    def __init__(self, model: str, parser: GLMStreamParser) -> None:
        self.model = model
        self.model_name = ""
        self.parser = parser
        self.usage: Usage | None = None
        self.raw_finish: str | None = None
        self.retry_one_shot = False  # glm-agent parses the raw text itself: nothing to ask again
        self.next_index = 0

    def feed(self, chunk: dict[str, Any]) -> list[ModelStreamEvent]:
        """Events for one decoded chunk."""
        self.model_name = chunk.get("model") or self.model_name
        self.usage = usage_from(chunk) or self.usage
        out: list[ModelStreamEvent] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            if choice.get("text"):
                out.extend(self.parser.feed(choice["text"]))
            self.raw_finish = choice.get("finish_reason") or self.raw_finish
        return out

    def finish(self) -> list[ModelStreamEvent]:
        """The parser's closing events, then `ResponseDone`."""
        out: list[ModelStreamEvent] = list(self.parser.finish())
        message = self.parser.result
        if message is None:  # finish() always sets it; guards a parser that breaks that rule
            raise ModelError("the GLM stream parser finished without a result")
        response = ModelResponse(
            message=message,
            usage=self.usage or Usage(requests=1),
            finish_reason=finish_reason(self.raw_finish, message),
            model_name=self.model_name or self.model,
        )
        out.append(ResponseDone(response=response))
        return out
