"""Generation for GLM vision checkpoints (`glm4v`, `glm4v_moe`, `glm46v`): images in, text out.

A vision prompt is the rendered prompt's token ids with each `<|image|>` placeholder repeated
once per merged patch of its image (what transformers' `Glm4vProcessor` does), plus the image
processor's `pixel_values` and `image_grid_thw`. Generation is gpt-fast style plain code over
the checkpoint's own transformers classes: one forward pass over the whole prompt (the vision
encoder runs inside it; M-RoPE positions from the model's `get_rope_index`), then one token per
step with text positions shifted by the prompt's rope delta, passed explicitly so nothing
depends on state the model keeps between calls. Sampling, stop tokens and strings and streamed
text are the text runtime's own (`sample_next`, `StopStrings`, `IncrementalText`).

One sequence at a time, no prefix reuse and no chunked prefill: `VisionEngine.stream` runs the
rows of a batch one after another, so `Batcher` serves it as it serves `Engine`.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from glm_agent.exceptions import MediaError, ModelError
from glm_agent.runtime.budget import ContextBudget, context_budget, free_memory_bytes
from glm_agent.runtime.detokenize import IncrementalText, StopStrings
from glm_agent.runtime.generation import GenerationResult, LogitsHook, TokenStep
from glm_agent.runtime.sampling import SamplingParams, sample_next
from glm_agent.runtime.transformers_compat import cache_keyword

if TYPE_CHECKING:
    import torch

__all__ = ["VisionEngine", "VisionPrompt", "vision_prompt"]

log = logging.getLogger("glm_agent.runtime")


@dataclass
class VisionPrompt(Sequence[int]):
    """A prompt's token ids (image placeholders expanded) with its images' pixels.

    A sequence of ids, so the batcher and the context budget count it as any prompt.
    """

    ids: list[int]
    image_token_id: int
    pixel_values: torch.Tensor | None = None
    """`[patches, C*T*P*P]` as the image processor made them, or None (text only)."""
    image_grid_thw: torch.Tensor | None = None
    """`[images, 3]` temporal, height and width patches of each image."""
    sizes: list[tuple[int, int]] = field(default_factory=list)
    """Each image's (width, height) as sent."""

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: Any) -> Any:
        return self.ids[i]

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)


def vision_prompt(
    ids: Sequence[int], images: Sequence[bytes], image_processor: Any, image_token_id: int
) -> VisionPrompt:
    """Expand each image placeholder of `ids` to its image's merged-patch count.

    Args:
        ids: The rendered prompt's ids, one `image_token_id` per image, in order.
        images: The images' bytes (PNG, JPEG, GIF, WebP), in prompt order.
        image_processor: The checkpoint's image processor (`Glm4vImageProcessor`...).
        image_token_id: The id of `<|image|>`.

    Raises:
        ModelError: the prompt has a different number of placeholders than images.
        MediaError: an image the processor cannot read.
    """
    slots = [i for i, t in enumerate(ids) if t == image_token_id]
    if len(slots) != len(images):
        raise ModelError(f"the prompt has {len(slots)} image placeholders for {len(images)} images")
    if not images:
        return VisionPrompt(list(ids), image_token_id)
    from PIL import Image

    try:
        pictures = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    except (OSError, ValueError) as e:
        raise MediaError(f"an image could not be decoded: {e}", code="invalid_image") from None
    out = image_processor(images=pictures, return_tensors="pt")
    grid = out["image_grid_thw"]  # [N, 3]
    merge = int(image_processor.merge_size) ** 2
    expanded: list[int] = []
    last = 0
    for slot, thw in zip(slots, grid, strict=True):
        expanded += list(ids[last:slot]) + [image_token_id] * (int(thw.prod()) // merge)
        last = slot + 1
    expanded += list(ids[last:])
    sizes = [p.size for p in pictures]
    return VisionPrompt(expanded, image_token_id, out["pixel_values"], grid, sizes)


class VisionEngine:
    """Generation over one loaded GLM vision model (see the module docstring).

    Args:
        model: A `Glm4vForConditionalGeneration` (or `Glm4vMoe...`, `Glm46V...`) in eval mode.
        decode: Token ids to text (streaming text, stop strings).
        attention_backend: Reported backend; None: the model's own.
        memory_limit: Memory to plan the context budget with (None: free memory now).
    """

    prefix_cache = None
    """No prefix reuse for vision prompts (their image tokens all share one id)."""

    def __init__(
        self,
        model: Any,
        *,
        decode: Callable[[Sequence[int]], str] | None = None,
        attention_backend: str | None = None,
        memory_limit: int | None = None,
    ) -> None:
        self.model = model
        self.decode = decode
        self.attention_backend = attention_backend or str(
            getattr(model.config, "_attn_implementation", None) or "sdpa"
        )
        self.memory_limit = memory_limit
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.text_config = model.config.get_text_config()

    def budget(self) -> ContextBudget:
        """The context budget of the language model on its device, measured now."""
        free = self.memory_limit if self.memory_limit is not None else None
        if free is None:
            free = free_memory_bytes(self.device)
        return context_budget(self.text_config, self.dtype, self.device, free_bytes=free)

    def make_room(self, tokens: int) -> None:
        """Nothing to evict: there is no prefix cache."""

    def stream(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        *,
        cancel: threading.Event | Sequence[threading.Event | None] | None = None,
        logits_hook: LogitsHook | None = None,
    ) -> _Rows:
        """Iterate `TokenStep`s of each row in turn; `.results` is set when exhausted."""
        return _Rows(self, prompts, params, cancel, logits_hook)

    def generate(
        self,
        prompt: Sequence[int],
        params: SamplingParams,
        *,
        cancel: threading.Event | None = None,
        logits_hook: LogitsHook | None = None,
    ) -> GenerationResult:
        """Generate for one prompt and return the finished sequence."""
        run = self.stream([prompt], params, cancel=cancel, logits_hook=logits_hook)
        for _ in run:
            pass
        return run.results[0]

    # --- one sequence -----------------------------------------------------------------------

    def _forward(self, cache: Any, **inputs: Any) -> torch.Tensor:
        out = self.model(**inputs, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
        logits: torch.Tensor = out.logits[:, -1].float()  # [1, V]
        return logits

    @property
    def _cache_kw(self) -> str:
        return cache_keyword(self.model)

    def run_row(
        self,
        row: int,
        prompt: Sequence[int],
        params: SamplingParams,
        cancel: threading.Event | None,
        hook: LogitsHook | None,
        result: GenerationResult,
    ) -> Iterator[TokenStep]:
        """Generate one sequence, yielding its tokens as they come."""
        import torch
        from transformers import DynamicCache

        vp = prompt if isinstance(prompt, VisionPrompt) else None
        ids = torch.tensor([list(prompt)], dtype=torch.long, device=self.device)  # [1, T]
        image_id = vp.image_token_id if vp is not None else -1
        mm = (ids == image_id).int()  # [1, T]: 1 at image tokens
        grid = (
            None if vp is None or vp.image_grid_thw is None else vp.image_grid_thw.to(self.device)
        )
        positions, delta = self.model.model.get_rope_index(ids, mm, image_grid_thw=grid)
        # positions: [3, 1, T] (time, height, width); delta: [1, 1], added to text positions
        inputs: dict[str, Any] = {"input_ids": ids, "position_ids": positions}
        if vp is not None and vp.pixel_values is not None:
            inputs.update(
                pixel_values=vp.pixel_values.to(self.device, self.dtype),
                image_grid_thw=grid,
                mm_token_type_ids=mm,
            )
        cache = DynamicCache(config=self.model.config)
        logits = self._forward(cache, **inputs)
        gen = None
        if not params.greedy:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(params.seed if params.seed is not None else torch.seed())
        text = IncrementalText(self.decode) if self.decode else None
        stop = StopStrings(params.stop)
        generated: list[int] = []
        seen = ids
        t = ids.shape[1]
        for step in range(params.max_new_tokens):
            if cancel is not None and cancel.is_set():
                result.finish_reason = "cancelled"
                break
            if hook is not None:
                logits = hook(logits, [generated])
            tok = int(sample_next(logits, params, gen, seen)[0])
            if tok in params.stop_token_ids:
                result.finish_reason, result.stop_token_id = "stop", tok
                break
            generated.append(tok)
            delta_text = stop.feed(text.add(tok)) if text is not None else ""
            result.text += delta_text
            yield TokenStep(row, tok, delta_text)
            if stop.stopped:
                result.finish_reason = "stop"
                break
            if len(generated) >= params.max_new_tokens:
                result.finish_reason = "length"
                break
            pos = (delta + t + step).view(1, 1, 1).expand(3, 1, 1)  # [3, 1, 1]
            nxt = torch.tensor([[tok]], dtype=torch.long, device=self.device)  # [1, 1]
            seen = torch.cat([seen, nxt], dim=1)
            logits = self._forward(cache, input_ids=nxt, position_ids=pos)
        if text is not None and not stop.stopped and result.finish_reason != "cancelled":
            tail = stop.feed(text.flush()) + stop.flush()
            result.text += tail
            if tail:
                yield TokenStep(row, -1, tail)
        result.token_ids = generated


class _Rows:
    """The rows of a batch, generated one after another (the `Generation` interface)."""

    def __init__(
        self,
        engine: VisionEngine,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        cancel: threading.Event | Sequence[threading.Event | None] | None,
        hook: LogitsHook | None,
    ) -> None:
        b = len(prompts)
        self.engine, self.prompts, self.hook = engine, list(prompts), hook
        self.params = [params] * b if isinstance(params, SamplingParams) else list(params)
        self.cancel = list(cancel) if isinstance(cancel, Sequence) else [cancel] * b
        self.results = [GenerationResult(prompt_tokens=len(p)) for p in self.prompts]
        budget = engine.budget()
        for p, sp in zip(self.prompts, self.params, strict=True):
            budget.check(len(p), sp.max_new_tokens)  # ContextLengthError before any work

    def __iter__(self) -> Iterator[TokenStep]:
        import torch

        with torch.inference_mode():
            for r, p in enumerate(self.prompts):
                yield from self.engine.run_row(
                    r, p, self.params[r], self.cancel[r], self.hook, self.results[r]
                )
