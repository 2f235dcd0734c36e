"""How much of each prompt the next one keeps, per GLM family, in real agent sessions.

A scripted support session runs through the real `Agent` with a SQLite session store (so the
history of later turns is what the store and the context window give back), on a model that
renders every request with the family's real format (`get_format(family).render`, the renderers
checked byte for byte against the official templates) and answers with the next scripted reply,
written out as the model writes it (the text the template gives that reply right after the
generation prompt, plus the stop token) and parsed back by the family's parser, as `LocalGLM`
does. Three turns, six requests: lookup_order -> get_tracking -> answer; refund_policy ->
answer; answer. Variants: thinking off / on for GLM-4.5+ (`glm47` also with
`clear_thinking=False`), Z1-style reasoning for `glm4-0414`, knowledge passages as context.

Per pair of consecutive requests N -> N+1 (tokens of glm-4-9b-chat's tokenizer, with the
family's special tokens; ChatGLM3 uses the same as a stand-in):

- kept: the share of prompt N that is a prefix of prompt N+1 (within a turn, and from the last
  request of a turn to the first of the next);
- hit: the share of prompt N+1 that the prefix cache holds after request N (prompt N and the
  output tokens fed back to the model), i.e. what `LocalGLM` does not prefill;
- re-prefilled: tokens the cache held after request N (prompt and output) that request N+1
  does not reuse because its prompt changed before them, as a share of prompt N+1;
- first break: where prompt N+1 first differs from prompt N (or from its output).

Variants marked "projection" change what the agent puts in its messages, as a proposal.

    .venv/bin/python benchmarks/prompt_prefix.py

Prints a markdown table and writes benchmarks/results/prompt_prefix.json.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glm_agent import Agent
from glm_agent.agent import SUMMARY_PROMPT
from glm_agent.glm import get_facts, get_format
from glm_agent.glm.tokenizer import GLMTokenizer
from glm_agent.memory import ContextWindow
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    Usage,
    UserMessage,
)
from glm_agent.models import ChatModel
from glm_agent.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT.parent / "shared" / "glm" / "glm-4-9b-chat" / "tokenizer.model"
RESULTS = ROOT / "benchmarks" / "results" / "prompt_prefix.json"
SYSTEM = "You are the support assistant of an electronics shop. Be brief and polite."


def lookup_order(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number, e.g. "A-1042".
    """
    return json.dumps({"order": order_id, "status": "shipped", "items": ["KB-204 keyboard"]})


def get_tracking(order_id: str) -> str:
    """Tracking events of an order's parcel.

    Args:
        order_id: The order number.
    """
    return json.dumps({"order": order_id, "events": ["picked", "in transit", "out for delivery"]})


def refund_policy(region: str) -> str:
    """The refund rules of a region.

    Args:
        region: Region code, e.g. "EU".
    """
    return f"{region}: returns within 30 days, refund to the original payment method."


TOOLS = [lookup_order, get_tracking, refund_policy]


def _call(name: str, **args: Any) -> ToolCall:
    return ToolCall(id="scripted", name=name, arguments=json.dumps(args))


TURNS: list[tuple[str, list[AssistantMessage]]] = [
    (
        "Where is my order A-1042?",
        [
            AssistantMessage(
                reasoning="The customer asks about an order; look it up first.",
                tool_calls=(_call("lookup_order", order_id="A-1042"),),
            ),
            AssistantMessage(
                reasoning="It shipped; the tracking events say where it is.",
                tool_calls=(_call("get_tracking", order_id="A-1042"),),
            ),
            AssistantMessage(
                reasoning="Out for delivery: tell the customer.",
                content="Your order A-1042 is out for delivery and should arrive today.",
            ),
        ],
    ),
    (
        "Can I still return it if I don't like it?",
        [
            AssistantMessage(
                reasoning="Returns depend on the region's policy.",
                tool_calls=(_call("refund_policy", region="EU"),),
            ),
            AssistantMessage(
                reasoning="30 days in the EU.",
                content="Yes: you can return it within 30 days for a full refund.",
            ),
        ],
    ),
    (
        "Great, thanks!",
        [AssistantMessage(reasoning="A thank-you.", content="You're welcome, have a nice day!")],
    ),
]


@dataclass(frozen=True)
class Variant:
    """One way of running a family."""

    family: str
    name: str
    enable_thinking: bool | None = None
    clear_thinking: bool | None = None
    reasoning: bool = False
    knowledge: bool = False
    tools: bool = True
    drop_reasoning: bool = False  # projection: the agent keeps no reasoning in its messages
    knowledge_in_user: bool = False  # projection: passages go in the user message
    turns: int = 3  # the script's three turns, repeated
    window: str | None = None  # "drop" or "summarize": a context window of WINDOW tokens


VARIANTS = [
    Variant("glm4", "plain"),
    Variant("glm4", "knowledge as context", knowledge=True),
    Variant("glm4-0414", "plain"),
    Variant("glm4-0414", "Z1 reasoning", reasoning=True),
    Variant("glm4-0414", "knowledge as context", knowledge=True),
    Variant("glm4-0414", "knowledge in the user message (projection)", knowledge_in_user=True),
    Variant("glm45", "thinking off", enable_thinking=False),
    Variant("glm45", "thinking on", enable_thinking=True, reasoning=True),
    Variant(
        "glm45",
        "thinking on, reasoning not kept in history (projection)",
        enable_thinking=True,
        reasoning=True,
        drop_reasoning=True,
    ),
    Variant("glm47", "thinking off", enable_thinking=False),
    Variant("glm47", "thinking on", enable_thinking=True, reasoning=True),
    Variant(
        "glm47",
        "thinking on, clear_thinking=False",
        enable_thinking=True,
        clear_thinking=False,
        reasoning=True,
    ),
    Variant("chatglm3", "chat (no tools)", tools=False),
    Variant("glm4", "12 turns, window drops old turns", turns=12, window="drop"),
    Variant("glm4", "12 turns, window summarises", turns=12, window="summarize"),
]
WINDOW = 1000  # tokens (256 of them kept for the answer): history outgrows it by turn 5


@dataclass
class Request:
    """One rendered request and the output written for it."""

    turn: int
    prompt: str
    output: str  # as the model writes it, without its stop token
    stop: str


@dataclass
class RenderingModel(ChatModel):
    """Renders each request with a family's format and answers with the next scripted reply."""

    variant: Variant
    replies: list[AssistantMessage]
    requests: list[Request] = field(default_factory=list)
    turn: int = 0
    max_context: int = 32768
    summaries: int = 0

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` (the context window fits history with it)."""
        return _tokenizer(self.variant.family).count(text)

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Render, record, answer."""
        v, fmt = self.variant, get_format(self.variant.family)
        if messages and messages[0].content == SUMMARY_PROMPT:  # the window's summariser
            self.summaries += 1
            text = f"The customer asked about order A-1042 and returns ({self.summaries})."
            return ModelResponse(message=AssistantMessage(content=text), model_name="script")
        flags = {"enable_thinking": v.enable_thinking}
        if v.clear_thinking is not None:
            flags["clear_thinking"] = v.clear_thinking
        prompt = fmt.render(messages, tools, **flags)
        reply = self.replies.pop(0)
        if not v.reasoning:
            reply = reply.model_copy(update={"reasoning": None})
        whole = fmt.render([*messages, reply], tools, add_generation_prompt=False, **flags)
        # Where the model writes: after the generation prompt (which `whole` may not repeat
        # byte for byte: glm47 opens `<think>` there, and renders it again in the history).
        opener = fmt.generation_prompt(v.enable_thinking)
        head = prompt[: len(prompt) - len(opener)]
        assert whole.startswith(head + "<|assistant|>"), (v, whole[len(head) : len(head) + 40])
        output = whole[len(head) + len(opener) :] if whole.startswith(prompt) else ""
        if not output:
            output = whole[len(head) + len("<|assistant|>") :].removeprefix("<think>")
        if v.family == "glm4-0414" and reply.reasoning:  # Z1 writes reasoning the template hides
            output = f"<think>{reply.reasoning}</think>{output}"
        stop = "<|observation|>" if reply.tool_calls else "<|user|>"
        message = fmt.parse(output + stop, tools, enable_thinking=v.enable_thinking)
        assert [c.name for c in message.tool_calls] == [c.name for c in reply.tool_calls]
        if v.drop_reasoning:
            message = message.model_copy(update={"reasoning": None})
        self.requests.append(Request(self.turn, prompt, output, stop))
        return ModelResponse(
            message=message, usage=Usage(requests=1), finish_reason="stop", model_name="script"
        )


class Passages:
    """A knowledge source with one fixed passage per question (for `knowledge_mode="context"`)."""

    async def asearch(self, query: str, k: int = 5, filters: Any = None) -> list[str]:
        """The passage for `query`."""
        return [f"Passage about: {query} Orders ship in 2 days; returns within 30 days."]

    def format_context(self, hits: list[str]) -> str:
        """Numbered passages."""
        return "\n".join(f"[{i}] {h}" for i, h in enumerate(hits, 1))


async def run_session(variant: Variant, db: Path) -> list[Request]:
    """The scripted three-turn session; returns its requests in order."""
    turns = [TURNS[n % len(TURNS)] for n in range(variant.turns)]
    replies = [r for _q, turn in turns for r in turn]
    if not variant.tools:
        replies = [r for r in replies if not r.tool_calls]
    model = RenderingModel(variant, replies)
    window = None
    if variant.window is not None:
        window = ContextWindow(
            WINDOW,
            reserve_output=256,
            count_tokens=model.count_tokens,
            summarize=None if variant.window == "drop" else _summarize_with(model),
        )
    agent = Agent(
        model,
        tools=TOOLS if variant.tools else [],
        system_prompt=SYSTEM,
        memory=f"sqlite:///{db}",
        knowledge=Passages() if variant.knowledge else None,
        knowledge_mode="context",
        model_settings=ModelSettings(enable_thinking=variant.enable_thinking),
        context_window=window,
    )
    for n, (question, _turn) in enumerate(turns):
        model.turn = n
        if variant.knowledge_in_user:
            hits = await Passages().asearch(question)
            question = f"{Passages().format_context(hits)}\n\n{question}"
        await agent.arun(question, session_id="customer-17")
    await agent.memory.aclose()  # type: ignore[union-attr]
    return model.requests


def _summarize_with(model: RenderingModel) -> Any:
    async def summarize(messages: list[Message], previous: str | None) -> str:
        response = await model.request(
            [SystemMessage(content=SUMMARY_PROMPT), UserMessage(content=str(len(messages)))]
        )
        return response.message.content or ""

    return summarize


def _common(a: Sequence[Any], b: Sequence[Any]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _tokenizer(family: str) -> GLMTokenizer:
    specials = get_facts(family).special_tokens
    if family == "chatglm3" or not specials:  # its own vocabulary: glm-4's as a stand-in
        return GLMTokenizer.from_tiktoken_file(TOKENIZER)
    return GLMTokenizer.from_tiktoken_file(TOKENIZER, special_tokens=specials)


def measure(variant: Variant, requests: list[Request]) -> dict[str, Any]:
    """Kept shares, cache hits and first breaks of one session."""
    tok = _tokenizer(variant.family)
    ids = [tok.encode_prompt(r.prompt) for r in requests]
    outs = [tok.encode(r.output) for r in requests]
    pairs = []
    for n in range(1, len(requests)):
        prev, cur = requests[n - 1], requests[n]
        kept = _common(ids[n - 1], ids[n])
        before = [*ids[n - 1], *outs[n - 1]]  # what the prefix cache holds after request N
        hit = _common(before, ids[n])
        at = _common(prev.prompt + prev.output, cur.prompt)
        pairs.append(
            {
                "step": n + 1,
                "new_turn": cur.turn != prev.turn,
                "prev_tokens": len(ids[n - 1]),
                "tokens": len(ids[n]),
                "kept": kept,
                "hit": hit,
                "lost": len(before) - hit,  # computed before, prefilled again after a break
                "break": None
                if at >= len(prev.prompt + prev.output)
                else {
                    "at_char": at,
                    "was": (prev.prompt + prev.output)[at : at + 40],
                    "now": cur.prompt[at : at + 40],
                },
            }
        )

    def share(rows: list[dict[str, Any]], num: str, den: str) -> float | None:
        total = sum(r[den] for r in rows)
        return sum(r[num] for r in rows) / total if total else None

    within = [p for p in pairs if not p["new_turn"]]
    across = [p for p in pairs if p["new_turn"]]
    return {
        "family": variant.family,
        "variant": variant.name,
        "requests": len(requests),
        "kept_within_turn": share(within, "kept", "prev_tokens"),
        "kept_new_turn": share(across, "kept", "prev_tokens"),
        "hit_within_turn": share(within, "hit", "tokens"),
        "hit_new_turn": share(across, "hit", "tokens"),
        "hit_all": share(pairs, "hit", "tokens"),
        "lost_all": share(pairs, "lost", "tokens"),
        "pairs": pairs,
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, variant in enumerate(VARIANTS):
            requests = asyncio.run(run_session(variant, Path(tmp) / f"s{i}.db"))
            rows.append(measure(variant, requests))
    print(
        "\nScripted support session (3 turns, 6 requests; 2 tool calls, 1 tool call, none), "
        "real Agent + SQLite store, real renderers; tokens of glm-4-9b-chat's tokenizer\n"
    )
    print(
        "| family | variant | kept, within a turn | kept, new turn | hit, within a turn | "
        "hit, new turn | hit, all steps | re-prefilled after a break |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['family']} | {r['variant']} | {_pct(r['kept_within_turn'])} | "
            f"{_pct(r['kept_new_turn'])} | {_pct(r['hit_within_turn'])} | "
            f"{_pct(r['hit_new_turn'])} | {_pct(r['hit_all'])} | {_pct(r['lost_all'])} |"
        )
    print("\nFirst breaks (where request N+1 leaves request N's prompt + output):")
    for r in rows:
        for p in r["pairs"]:
            if p["break"] is not None:
                b = p["break"]
                print(
                    f"- {r['family']} / {r['variant']}, step {p['step']}"
                    f"{' (new turn)' if p['new_turn'] else ''}: was {b['was']!r}, "
                    f"now {b['now']!r}"
                )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
