"""LangChain interop both ways: `to_langchain(model)` and `from_langchain(lc_model)`.

- `to_langchain` wraps any glm-agent `ChatModel` as a LangChain `BaseChatModel`
  (`GlmAgentChatModel`): `invoke` / `ainvoke`, `bind_tools`, and streaming with
  `tool_call_chunks`, so it drops into LangChain and LangGraph code.
- `from_langchain` wraps any LangChain chat model as a glm-agent `ChatModel` (`LangChainModel`):
  messages are mapped, tools go through the model's `bind_tools`, streaming uses `astream`.

Needs `langchain-core` (`pip install "glm-agent[langchain]"`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from pydantic import ConfigDict

from glm_agent.exceptions import (
    GlmAgentError,
    MissingDependencyError,
    ModelError,
    ModelHTTPError,
    UserError,
)
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    ToolDefinition,
    Usage,
)
from glm_agent.models._openai_wire import ChatStreamState
from glm_agent.models.base import ChatModel, events_from_response
from glm_agent.settings import ModelSettings

try:
    from langchain_core import messages as lc
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel, LanguageModelInput
    from langchain_core.messages.tool import tool_call_chunk
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.runnables import Runnable
    from langchain_core.utils.function_calling import convert_to_openai_tool
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("langchain-core", "langchain", "LangChain interop") from e

from glm_agent.models._langchain_messages import (
    assistant_from_langchain,
    message_text,
    messages_from_langchain,
    messages_to_langchain,
    reasoning_of,
    response_to_langchain,
    usage_of,
)

__all__ = [
    "GlmAgentChatModel",
    "LangChainModel",
    "from_langchain",
    "messages_from_langchain",
    "messages_to_langchain",
    "to_langchain",
]

FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]
_SETTING_FIELDS = frozenset(ModelSettings.model_fields) - {"extra", "stop", "tool_choice"}


# --- glm-agent model → LangChain ---------------------------------------------------------------


class GlmAgentChatModel(BaseChatModel):
    """A glm-agent `ChatModel` as a LangChain chat model (see `to_langchain`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chat_model: ChatModel
    """The wrapped glm-agent model."""
    settings: ModelSettings | None = None
    """Default settings for every call; call kwargs (`temperature=...`) override them."""

    @property
    def _llm_type(self) -> str:
        return "glm-agent"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.chat_model.name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, lc.AIMessage]:
        """Bind tools (LangChain tools, functions, pydantic classes or OpenAI dicts)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _call_args(
        self, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[list[ToolDefinition], ModelSettings]:
        tools = [ToolDefinition.from_openai(t) for t in kwargs.pop("tools", None) or []]
        data: dict[str, Any] = {}
        choice = kwargs.pop("tool_choice", None)
        if choice is not None:
            if choice is True or choice == "any":
                choice = "required"
            elif isinstance(choice, dict):
                choice = choice.get("function", choice).get("name")
            data["tool_choice"] = choice
        if stop:
            data["stop"] = list(stop)
        data.update({k: kwargs.pop(k) for k in list(kwargs) if k in _SETTING_FIELDS})
        if kwargs:
            data["extra"] = kwargs
        base = self.settings or ModelSettings()
        return tools, base.merged(ModelSettings(**data))

    def _generate(
        self,
        messages: list[lc.BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools, settings = self._call_args(stop, kwargs)
        response = self.chat_model.request_sync(messages_from_langchain(messages), tools, settings)
        return ChatResult(generations=[ChatGeneration(message=response_to_langchain(response))])

    async def _agenerate(
        self,
        messages: list[lc.BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools, settings = self._call_args(stop, kwargs)
        response = await self.chat_model.request(messages_from_langchain(messages), tools, settings)
        return ChatResult(generations=[ChatGeneration(message=response_to_langchain(response))])

    def _stream(
        self,
        messages: list[lc.BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tools, settings = self._call_args(stop, kwargs)
        for event in self.chat_model.stream_sync(
            messages_from_langchain(messages), tools, settings
        ):
            chunk = _event_chunk(event)
            if chunk is not None:
                if run_manager is not None:
                    run_manager.on_llm_new_token(message_text(chunk.message.content), chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[lc.BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tools, settings = self._call_args(stop, kwargs)
        async for event in self.chat_model.request_stream(
            messages_from_langchain(messages), tools, settings
        ):
            chunk = _event_chunk(event)
            if chunk is not None:
                if run_manager is not None:
                    await run_manager.on_llm_new_token(
                        message_text(chunk.message.content), chunk=chunk
                    )
                yield chunk


def _event_chunk(event: ModelStreamEvent) -> ChatGenerationChunk | None:
    if isinstance(event, TextDelta):
        msg = lc.AIMessageChunk(content=event.content)
    elif isinstance(event, ReasoningDelta):
        msg = lc.AIMessageChunk(content="", additional_kwargs={"reasoning_content": event.content})
    elif isinstance(event, ToolCallStart):
        tc = tool_call_chunk(name=event.name, args="", id=event.id, index=event.index)
        msg = lc.AIMessageChunk(content="", tool_call_chunks=[tc])
    elif isinstance(event, ToolCallArgsDelta):
        tc = tool_call_chunk(name=None, args=event.delta, id=None, index=event.index)
        msg = lc.AIMessageChunk(content="", tool_call_chunks=[tc])
    elif isinstance(event, ResponseDone):
        last = response_to_langchain(event.response)
        msg = lc.AIMessageChunk(
            content="", usage_metadata=last.usage_metadata, response_metadata=last.response_metadata
        )
    else:  # ToolCallEnd: the call is already complete in the merged chunks
        return None
    return ChatGenerationChunk(message=msg)


def to_langchain(model: ChatModel, settings: ModelSettings | None = None) -> GlmAgentChatModel:
    """Any glm-agent `ChatModel` as a LangChain chat model.

    Args:
        model: The glm-agent model (local GLM, OpenAI-compatible, `FunctionModel`...).
        settings: Default settings for every call.
    """
    return GlmAgentChatModel(chat_model=model, settings=settings)


# --- LangChain model → glm-agent ---------------------------------------------------------------


class LangChainModel(ChatModel):
    """A LangChain chat model as a glm-agent `ChatModel` (see `from_langchain`).

    Generation settings reach the LangChain model as call keyword arguments only through
    `settings.extra` (and `stop`), because their names differ between LangChain providers.

    Args:
        model: The LangChain chat model.
        bind_tools: Offer tools through the model's `bind_tools`; with False, tools are not
            sent (for models without tool support, such as LangChain's fakes).
        name: Name shown in transcripts (default: the model's `_llm_type`).
    """

    def __init__(
        self, model: BaseChatModel, *, bind_tools: bool = True, name: str | None = None
    ) -> None:
        self.lc_model = model
        self.bind_tools = bind_tools
        self.name = name or getattr(model, "model_name", None) or model._llm_type

    def _runnable(
        self, tools: Sequence[ToolDefinition], settings: ModelSettings
    ) -> Runnable[LanguageModelInput, Any]:
        runnable: Runnable[LanguageModelInput, Any] = self.lc_model
        if tools and self.bind_tools:
            choice = settings.tool_choice
            try:
                runnable = self.lc_model.bind_tools(
                    [t.to_openai() for t in tools],
                    **({"tool_choice": choice} if choice is not None else {}),
                )
            except NotImplementedError as e:
                raise UserError(
                    f"LangChain model {type(self.lc_model).__name__} has no bind_tools; "
                    "use from_langchain(model, bind_tools=False) to call it without tools"
                ) from e
        kwargs = dict(settings.extra)
        if settings.stop:
            kwargs["stop"] = list(settings.stop)
        return runnable.bind(**kwargs) if kwargs else runnable

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Run one turn with `ainvoke`."""
        settings = settings or ModelSettings()
        runnable = self._runnable(tools, settings)
        try:
            result = await runnable.ainvoke(messages_to_langchain(messages))
        except GlmAgentError:
            raise
        except Exception as e:
            raise _model_error(e, self.name) from e
        return self._response(result)

    async def request_stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn with `astream`; tool calls come from `tool_call_chunks`."""
        settings = settings or ModelSettings()
        # Chunks are translated to OpenAI deltas so the HTTP backend's accumulator (names that
        # arrive late, argument pieces, call ids) does the bookkeeping once for both.
        state = ChatStreamState(self.name)
        usage: Usage | None = None
        runnable = self._runnable(tools, settings)
        async for piece in _guarded(runnable.astream(messages_to_langchain(messages)), self.name):
            if not isinstance(piece, lc.AIMessageChunk):
                # Models without streaming hand back one whole message: replay it.
                for event in events_from_response(self._response(piece)):
                    yield event
                return
            if piece.usage_metadata:  # LangChain chunks carry usage increments
                step = usage_of(piece)
                usage = step if usage is None else usage + step.model_copy(update={"requests": 0})
            delta = {
                "reasoning_content": reasoning_of(piece),
                "content": message_text(piece.content),
                "tool_calls": [
                    {
                        "index": tc["index"] if isinstance(tc.get("index"), int) else i,
                        "id": tc.get("id"),
                        "function": {"name": tc.get("name"), "arguments": tc.get("args")},
                    }
                    for i, tc in enumerate(piece.tool_call_chunks)
                ],
            }
            finish = piece.response_metadata.get("finish_reason")
            chunk = {
                "model": piece.response_metadata.get("model_name"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            for event in state.feed(chunk):
                yield event
        state.usage = usage
        for event in state.finish():
            yield event

    def _response(self, result: Any) -> ModelResponse:
        if not isinstance(result, lc.AIMessage):
            raise UserError(f"LangChain model returned {type(result).__name__}, not an AIMessage")
        message = assistant_from_langchain(result)
        raw = result.response_metadata.get("finish_reason")
        return ModelResponse(
            message=message,
            usage=usage_of(result),
            finish_reason=_finish(raw, message),
            model_name=result.response_metadata.get("model_name") or self.name,
        )


def _model_error(error: Exception, name: str) -> ModelError:
    """The provider's exception as ours; an HTTP status (openai, httpx errors) is kept."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        body = getattr(getattr(error, "response", None), "text", None) or str(error)
        return ModelHTTPError(status, body, model=name)
    return ModelError(f"LangChain model {name} failed: {type(error).__name__}: {error}")


async def _guarded(pieces: AsyncIterator[Any], name: str) -> AsyncIterator[Any]:
    try:
        async for piece in pieces:
            yield piece
    except GlmAgentError:
        raise
    except Exception as e:
        raise _model_error(e, name) from e


def _finish(raw: Any, message: AssistantMessage) -> FinishReason:
    if message.tool_calls:
        return "tool_calls"
    return "length" if raw == "length" else "stop"


def from_langchain(model: BaseChatModel, *, bind_tools: bool = True) -> LangChainModel:
    """Any LangChain chat model as a glm-agent `ChatModel`.

    Args:
        model: The LangChain chat model (`ChatOpenAI`, `ChatZhipuAI`, a fake...).
        bind_tools: Offer tools through `bind_tools` (False for models without tool support).
    """
    return LangChainModel(model, bind_tools=bind_tools)
