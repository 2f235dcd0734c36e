"""Tool calls that survive the serving engine: a check of the calls vLLM / SGLang parsed.

In chat mode the server's GLM tool parser turns the model's `<tool_call>` markup into OpenAI
tool calls, and those parsers keep breaking: markup left in `content`, numbers typed as strings,
a no-argument call dropped while streaming, a value ending in `<` that breaks the closing tag
(vLLM / SGLang issues). `server_tool_calls` decides what glm-agent does with what it gets:

- `trust`: the server's calls as they are (OpenAI, Zhipu).
- `repair` (vLLM and SGLang): each call is checked against its tool's schema; an argument that
  arrived as a string encoding what the schema wants (`"3"` for an integer, `"[1, 2]"` for an
  array) is decoded, a number or boolean where the schema wants only a string becomes its JSON
  text; `<tool_call>` markup left in the content is read with glm-agent's own codec (so are
  `<think>…</think>` left there); a streamed answer whose calls the server's streaming parser
  lost (`finish_reason: tool_calls` without a call, or arguments that are not a JSON object) is
  asked again without streaming, once, and that answer's calls are used.
- `own`: as `repair`, and every call the server parsed is written back as the GLM markup it came
  from and read again by glm-agent's codec, so its arguments are exactly what glm-agent's own
  parser gives for that text (README §5 typing; e.g. `"404"` stays a string for a
  `string | null` parameter, where vLLM makes it 404).

A call is never run with arguments that could not be recovered intact: those stay as they are
(not a JSON object), and the agent loop answers them as invalid arguments for the model to fix.
While streaming, the server's argument deltas are passed on as they come; a call repaired at
the end carries its repaired arguments in `ToolCallEnd` (consumers commit on `ToolCallEnd`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from glm_agent.glm import admitted_types, coerce_to_schema, get_format
from glm_agent.messages import (
    AssistantMessage,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
    new_call_id,
)

if TYPE_CHECKING:
    from glm_agent.glm import GLMStreamParser

__all__ = ["SERVER_TOOL_CALLS", "CallRepair", "ServerToolCalls", "retried"]

ServerToolCalls = Literal["trust", "repair", "own"]
"""What to do with the tool calls a server parsed (see the module docstring)."""

SERVER_TOOL_CALLS: tuple[ServerToolCalls, ...] = ("trust", "repair", "own")

# The servers' GLM parsers read both layouts (newlines or not); so does this format's parser.
# With thinking off nothing is reasoning unless a `</think>` says so.
_CODEC = get_format("glm47")


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _json_object(arguments: str) -> dict[str, Any] | None:
    """The arguments as a JSON object (finite numbers only), or None."""
    try:
        value = json.loads(arguments, parse_constant=_no_constant) if arguments.strip() else {}
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class CallRepair:
    """Checks and repairs one request's tool calls; `policy` is never `trust` here.

    Args:
        tools: The tools offered with the request.
        policy: `repair` or `own`.
    """

    def __init__(self, tools: Sequence[ToolDefinition], policy: ServerToolCalls) -> None:
        self.policy = policy
        self.tools = list(tools)
        self.names = frozenset(t.name for t in tools)
        self._props: dict[str, Mapping[str, Any]] = {}
        for t in tools:
            props = t.parameters.get("properties") if isinstance(t.parameters, Mapping) else None
            self._props[t.name] = props if isinstance(props, Mapping) else {}

    # --- one call -------------------------------------------------------------------------------

    def fix_call(self, call: ToolCall) -> ToolCall:
        """The server's call, checked against its schema (and re-read by our codec for `own`)."""
        if call.name not in self.names:
            return call  # an unknown tool: the agent loop tells the model which tools exist
        args = _json_object(call.arguments)
        if args is None:
            return call  # not a JSON object: answered as invalid arguments, never run
        if self.policy == "own":  # the markup this call was read from, read by our codec
            prompt = _CODEC.render(
                [AssistantMessage(tool_calls=(call,))], add_generation_prompt=False
            )
            markup = prompt.split("<|assistant|>", 1)[1]
            reread = _CODEC.parse(markup, self.tools, enable_thinking=False).tool_calls
            if len(reread) == 1:
                return call.model_copy(update={"arguments": reread[0].arguments})
            return call
        props = self._props.get(call.name, {})
        fixed = {k: _to_schema(v, props.get(k)) for k, v in args.items()}
        if fixed == args and all(type(fixed[k]) is type(args[k]) for k in args):
            return call
        return call.model_copy(update={"arguments": json.dumps(fixed, ensure_ascii=False)})

    def stream_failed(
        self, received: Sequence[ToolCall], calls: Sequence[ToolCall], raw_finish: str | None
    ) -> bool:
        """Whether a streamed answer shows the server's streaming parser failed: a call the
        finish reason announces but none came (`calls`: all, markup recovered included), or a
        call the server streamed (`received`) whose arguments are not a JSON object."""
        if raw_finish == "tool_calls" and not calls:
            return True
        return any(_json_object(c.arguments) is None for c in received)

    def stream_parser(self) -> GLMStreamParser:
        """glm-agent's parser for the content the server streams (markup it left there)."""
        return _CODEC.stream_parser(self.tools, enable_thinking=False)

    # --- markup left in the content -------------------------------------------------------------

    def read_content(self, content: str) -> AssistantMessage:
        """`content` read by glm-agent's codec: calls (and reasoning) from markup the server
        left there. Always read, as while streaming, so both give the same (stripped) text."""
        return _CODEC.parse(content, self.tools, enable_thinking=False)

    def repair(self, message: AssistantMessage) -> AssistantMessage:
        """A non-streamed answer, repaired."""
        calls = [self.fix_call(c) for c in message.tool_calls]
        content, reasoning = message.content, message.reasoning
        parsed = self.read_content(content) if content else None
        if parsed is not None:
            content = parsed.content
            reasoning = _join(reasoning, parsed.reasoning)
            calls += parsed.tool_calls
        return message.model_copy(
            update={"content": content, "reasoning": reasoning, "tool_calls": tuple(calls)}
        )


def _join(a: str | None, b: str | None) -> str | None:
    if a and b:
        return a + b
    return a or b


def _to_schema(value: Any, schema: Any) -> Any:
    """`value` coerced losslessly to what `schema` wants (see the module docstring)."""
    coerced = coerce_to_schema(value, schema)
    if coerced is not value:
        return coerced
    types = admitted_types(schema)
    string_only = types is not None and types - {"null"} == {"string"}
    if string_only and isinstance(value, bool | int | float) and not isinstance(value, str):
        return json.dumps(value)
    return value


def retried(
    closing: list[ModelStreamEvent], again: ModelResponse, first_index: int
) -> list[ModelStreamEvent]:
    """The closing events of a stream whose calls the server's streaming parser lost, with the
    answer to the same request asked without streaming: its calls are announced (indices from
    `first_index` on, after every index the stream used) and its message is the one
    `ResponseDone` carries; the usage counts both requests. The lost stream's calls get no
    `ToolCallEnd` (consumers commit on it)."""
    out: list[ModelStreamEvent] = []
    streamed: ModelResponse | None = None
    for event in closing:
        if isinstance(event, ResponseDone):
            streamed = event.response
        elif not isinstance(event, ToolCallEnd):
            out.append(event)
    # Fresh ids: a server may reuse the lost stream's ids, and those were announced already.
    calls = tuple(c.model_copy(update={"id": new_call_id()}) for c in again.message.tool_calls)
    for i, c in enumerate(calls, start=first_index):
        out.append(ToolCallStart(index=i, id=c.id, name=c.name))
        out.append(ToolCallArgsDelta(index=i, id=c.id, delta=c.arguments))
        out.append(ToolCallEnd(index=i, call=c))
    usage = again.usage + streamed.usage if streamed is not None else again.usage
    message = again.message.model_copy(update={"tool_calls": calls})
    out.append(ResponseDone(response=again.model_copy(update={"usage": usage, "message": message})))
    return out
