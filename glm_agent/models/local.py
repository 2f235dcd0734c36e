"""`LocalGLM`: a GLM checkpoint run in-process by glm_agent's runtime.

Renders with the checkpoint's GLM format, generates on a worker thread (the event loop stays
free), parses reasoning and tool calls (also while streaming) and reports token usage. The
engine keeps the K/V of recent prompts and outputs: each step of an agent run, each turn of a
session and each session sharing the system prompt and tools prefills only what is new.

Vision checkpoints (`glm4v`, `glm4v_moe`, `glm46v`) read the images of user (and GLM-4.5V /
4.6V tool) messages: the checkpoint's image processor makes their pixels, the prompt's
`<|image|>` placeholders are expanded to one token per merged patch, and the runtime's
`VisionEngine` generates (one sequence at a time, no prefix reuse).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from glm_agent.exceptions import ModelError
from glm_agent.messages import (
    AssistantMessage,
    MediaPart,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    ToolDefinition,
    Usage,
)
from glm_agent.models.base import ChatModel
from glm_agent.runtime.batcher import Batcher
from glm_agent.runtime.engine import Engine, GenerationResult, LogitsHook
from glm_agent.runtime.loading import LoadedModel, load_model
from glm_agent.runtime.prefix_cache import PrefixCache
from glm_agent.runtime.sampling import SamplingParams
from glm_agent.runtime.vision import VisionEngine, vision_prompt
from glm_agent.settings import ModelSettings

__all__ = ["LocalGLM"]

log = logging.getLogger("glm_agent.models.local")

_DEFAULT_MAX_TOKENS = 1024


def _checkpoint_dir(path_or_id: str) -> Path:
    local = Path(path_or_id).expanduser()
    if local.is_dir():
        return local
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(path_or_id, allow_patterns=["*.json", "*.jinja", "*.model"]))


def _chat_template(root: Path) -> str | None:
    jinja = root / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    cfg = root / "tokenizer_config.json"
    if cfg.is_file():
        template = json.loads(cfg.read_text()).get("chat_template")
        if isinstance(template, str):
            return template
    return None


class LocalGLM(ChatModel):
    """A GLM checkpoint (`glm`, `glm4`, `glm4_moe`; vision: `glm4v`, `glm4v_moe`, `glm46v`)
    generating in this process.

    Args:
        path_or_id: Checkpoint directory or hub id.
        device: `cuda`, `cpu`...; None: CUDA when present.
        dtype: None: bf16 on GPU, fp32 on CPU.
        attention: `xformers`, `sdpa` or `eager`; None: xformers on GPU if installed, else SDPA.
        family: GLM chat-format family; None: from the checkpoint's name and model_type.
        prefill_chunk: Prompt tokens per prefill pass.
        compile_decode: Compile the decode step on GPU (CUDA graphs).
        logits_hook: Optional hook on each step's logits (constrained decoding, tests).
        max_batch_size: Requests that arrive while the model is busy run together, up to
            this many sequences per batch.
        prefix_cache_bytes: Most bytes of K/V kept for prefix reuse between requests; 0 turns
            it off; None: a quarter of the device's free memory once the weights are loaded.
        clear_thinking: glm47 (GLM-4.7, GLM-5.x): False keeps the reasoning of earlier turns in
            the prompt ("preserved thinking"), so a session's prompt only grows and the prefix
            cache keeps hitting across turns; None leaves the template's default (cleared).
        loaded: A model already loaded (`load_model`), whose weights this instance shares
            (two LocalGLMs with different settings, a model built in memory); `path_or_id`
            then supplies only the tokenizer and chat template, and `device`, `dtype` and
            `attention` are not used.
    """

    def __init__(
        self,
        path_or_id: str | Path,
        *,
        device: str | None = None,
        dtype: Any = None,
        attention: str | None = None,
        family: str | None = None,
        prefill_chunk: int = 2048,
        compile_decode: bool = False,
        logits_hook: LogitsHook | None = None,
        max_batch_size: int = 8,
        prefix_cache_bytes: int | None = None,
        clear_thinking: bool | None = None,
        loaded: LoadedModel | None = None,
    ) -> None:
        from glm_agent.glm import check_chat_template, family_for_model, get_format
        from glm_agent.glm.tokenizer import GLMTokenizer

        path = str(path_or_id)
        self.loaded: LoadedModel = loaded or load_model(
            path, device=device, dtype=dtype, attention=attention
        )
        root = _checkpoint_dir(path)
        self.tokenizer = GLMTokenizer.from_pretrained(root)
        self.family = family or family_for_model(root.name, self.loaded.model_type)
        self.format = get_format(self.family)
        self.clear_thinking = clear_thinking
        template = _chat_template(root)
        if template is not None:
            mismatches = check_chat_template(template, self.family)
            if mismatches:
                log.warning(
                    "%s: chat_template differs from the %s format: %s",
                    path,
                    self.family,
                    "; ".join(mismatches),
                )
        config = self.loaded.config
        eos = config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        self.stop_token_ids = tuple(dict.fromkeys([*self.format.facts.stop_token_ids, *eos_ids]))
        pad = config.pad_token_id if config.pad_token_id is not None else self.stop_token_ids[0]
        self.media: tuple[str, ...] | None = ()
        self.image_processor: Any = None
        self.processor_source: str | None = None
        """`AutoProcessor`, or `AutoImageProcessor` where the processor needs torchvision."""
        self.engine: Engine | VisionEngine
        if self.loaded.vision:
            from glm_agent.models import _local_vision as lv

            self.image_processor, self.processor_source = lv.image_processor_for(root)
            self.image_token_id = lv.image_token_id(self.tokenizer, config, root)
            self.media = ("image",)
            self.engine = VisionEngine(
                self.loaded.model,
                decode=self.tokenizer.decode,
                attention_backend=self.loaded.attention_backend,
            )
            max_batch_size = 1
        else:
            self.engine = Engine(
                self.loaded.model,
                decode=self.tokenizer.decode,
                attention_backend=self.loaded.attention_backend,
                prefill_chunk=prefill_chunk,
                compile_decode=compile_decode,
                pad_token_id=pad,
                prefix_cache_bytes=prefix_cache_bytes,
            )
        self.batcher = Batcher(self.engine, max_batch_size, logits_hook)
        self.name = f"tiny-glm:{path}" if self.loaded.is_tiny else path
        if self.loaded.is_tiny:
            log.warning("LocalGLM %s: tiny random-weight model, its output is noise", path)

    @property
    def logits_hook(self) -> LogitsHook | None:
        """Hook on each step's logits, applied from the next batch on."""
        return self.batcher.logits_hook

    @logits_hook.setter
    def logits_hook(self, hook: LogitsHook | None) -> None:
        self.batcher.logits_hook = hook

    @property
    def prefix_cache(self) -> PrefixCache | None:
        """The K/V kept between requests, with its counters (`.stats`); None when off."""
        return self.engine.prefix_cache

    @property
    def attention_backend(self) -> str:
        """The attention implementation in use (`xformers`, `sdpa`, `eager`)."""
        return self.engine.attention_backend

    @property
    def max_context(self) -> int:
        """The longest context this model takes here: its config limit, capped by free memory."""
        return self.engine.budget().max_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with the checkpoint's tokenizer (used to fit session history)."""
        return self.tokenizer.count(text)

    def count_media_tokens(self, part: MediaPart) -> int:
        """An image's prompt tokens by the checkpoint's own image processor."""
        if self.image_processor is None:
            return part.estimated_tokens()
        from glm_agent.models._local_vision import image_token_count

        return image_token_count(self.image_processor, part)

    def _prepare(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition],
        settings: ModelSettings | None,
    ) -> tuple[Sequence[int], SamplingParams, ModelSettings]:
        s = settings or ModelSettings()
        # The template switches, as a chat server would read them (`chat_template_kwargs`).
        kw = s.extra.get("chat_template_kwargs") or {}
        clear = kw.get("clear_thinking", self.clear_thinking)
        prompt = self.format.render(
            messages,
            tools,
            enable_thinking=s.enable_thinking,
            clear_thinking=clear,
            reasoning_effort=kw.get("reasoning_effort"),
        )
        ids: Sequence[int] = list(self.tokenizer.encode_prompt(prompt))
        if self.image_processor is not None:
            from glm_agent.models._local_vision import conversation_images

            images = conversation_images(messages)
            ids = vision_prompt(ids, images, self.image_processor, self.image_token_id)
        facts = self.format.facts
        budget = self.engine.budget()
        room = budget.max_tokens - len(ids)
        max_new = (
            s.max_tokens if s.max_tokens is not None else max(1, min(_DEFAULT_MAX_TOKENS, room))
        )
        params = SamplingParams(
            max_new_tokens=max_new,
            temperature=s.temperature if s.temperature is not None else facts.default_temperature,
            top_p=s.top_p if s.top_p is not None else facts.default_top_p,
            top_k=s.top_k or 0,
            repetition_penalty=s.repetition_penalty or 1.0,
            seed=s.seed,
            stop_token_ids=self.stop_token_ids,
            stop=tuple(s.stop or ()),
        )
        budget.check(len(ids), max_new)  # ContextLengthError before any allocation
        return ids, params, s

    def _response(
        self, message: AssistantMessage, result: GenerationResult, prompt_tokens: int
    ) -> ModelResponse:
        if message.tool_calls:
            finish = "tool_calls"
        else:
            finish = {"stop": "stop", "length": "length", "cancelled": "cancelled"}[
                result.finish_reason
            ]
        out_tokens = len(result.token_ids) + (result.stop_token_id is not None)
        usage = Usage(input_tokens=prompt_tokens, output_tokens=out_tokens, requests=1)
        return ModelResponse(
            message=message,
            usage=usage,
            finish_reason=finish,  # type: ignore[arg-type]
            model_name=self.name,
        )

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Generate one turn on the batcher's thread; cancelling the task stops generation."""
        ids, params, s = self._prepare(messages, tools, settings)
        cancel = threading.Event()
        job = self.batcher.submit(ids, params, cancel=cancel)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(job), s.timeout)
        except (asyncio.CancelledError, TimeoutError) as e:
            cancel.set()  # a running job ignores future.cancel(): the event ends its row
            if isinstance(e, TimeoutError):
                raise ModelError(f"{self.name}: no answer within {s.timeout} s") from e
            raise
        message = self.format.parse(result.text, tools, enable_thinking=s.enable_thinking)
        return self._response(message, result, len(ids))

    async def request_stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn: text, reasoning and tool-call events, then `ResponseDone`."""
        ids, params, s = self._prepare(messages, tools, settings)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def post(kind: str, item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, item))
            except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
                cancel.set()

        def finished(future: Future[GenerationResult]) -> None:
            if future.cancelled():
                post("error", asyncio.CancelledError())
            elif (error := future.exception()) is not None:
                post("error", error)
            else:
                post("done", future.result())

        job = self.batcher.submit(
            ids, params, cancel=cancel, on_text=lambda text: post("text", text)
        )
        job.add_done_callback(finished)
        parser = self.format.stream_parser(tools, enable_thinking=s.enable_thinking)
        try:
            while True:
                kind, item = await queue.get()
                if kind == "text":
                    for event in parser.feed(item):
                        yield event
                elif kind == "error":
                    raise item
                else:
                    for event in parser.finish():
                        yield event
                    message = parser.result or self.format.parse(
                        item.text, tools, enable_thinking=s.enable_thinking
                    )
                    yield ResponseDone(response=self._response(message, item, len(ids)))
                    return
        finally:
            cancel.set()  # the consumer stopped early (or we are done): end generation

    async def aclose(self) -> None:
        """Stop the batcher's worker thread (queued requests are cancelled)."""
        self.batcher.close()
