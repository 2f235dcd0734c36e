"""The context window: budget, unsplit tool calls, incremental summaries."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent.exceptions import ContextLengthError, UserError
from glm_agent.memory import (
    ContextWindow,
    ConversationMemory,
    Summary,
    estimate_tokens,
    open_store,
    turn_units,
)
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)

SHARED = Path(__file__).parents[2].parent / "shared"
GLM_TOKENIZER = SHARED / "glm" / "glm-4-9b-chat" / "tokenizer.model"


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def turn(i: int, *, tools: int = 0, size: int = 20) -> list[Message]:
    """A user question, `tools` parallel tool calls with their results, and an answer."""
    calls = tuple(
        ToolCall.from_args("lookup", {"q": f"{i}.{k}"}, id=f"c{i}_{k}") for k in range(tools)
    )
    out: list[Message] = [UserMessage(content=words(size, f"u{i}_"))]
    if calls:
        out.append(AssistantMessage(tool_calls=calls))
        out += [ToolMessage(content=words(size, f"r{i}_"), tool_call_id=c.id) for c in calls]
    out.append(AssistantMessage(content=words(size, f"a{i}_")))
    return out


def history_of(n: int, tools: int = 1) -> list[Message]:
    return [m for i in range(n) for m in turn(i, tools=tools)]


def assert_no_split_tool_calls(messages: list[Message]) -> None:
    answered: set[str] = set()
    pending: set[str] = set()
    for m in messages:
        if isinstance(m, AssistantMessage):
            assert not pending, "a tool call lost its result"
            pending = {c.id for c in m.tool_calls}
        elif isinstance(m, ToolMessage):
            assert m.tool_call_id in pending, "a tool result without its call"
            pending.discard(m.tool_call_id)
            answered.add(m.tool_call_id)
    assert not pending


def test_turn_units_keep_parallel_calls_with_results() -> None:
    msgs = turn(0, tools=3) + turn(1)
    assert turn_units(msgs) == [(0, 1), (1, 5), (5, 6), (6, 7), (7, 8)]


def test_everything_fits() -> None:
    window = ContextWindow(max_tokens=10_000, reserve_output=500)
    history = history_of(3)
    new = [UserMessage(content="and now?")]
    ctx = asyncio.run(window.build("be brief", history, new))
    assert ctx.messages == [SystemMessage(content="be brief"), *history, *new]
    assert (ctx.history_start, ctx.dropped, ctx.summary, ctx.summary_changed) == (0, 0, None, False)
    assert ctx.tokens == window.count(ctx.messages)


@pytest.mark.parametrize("budget", [150, 200, 260, 333, 400, 555])
def test_drops_oldest_within_budget_never_splitting_calls(budget: int) -> None:
    window = ContextWindow(max_tokens=budget + 100, reserve_output=100)
    history = history_of(8, tools=2)
    new = [UserMessage(content="next question")]
    ctx = asyncio.run(window.build("system", history, new))
    assert ctx.tokens <= window.budget
    assert ctx.messages[0] == SystemMessage(content="system")
    assert ctx.messages[-1] == new[0]
    kept = ctx.messages[1:-1]
    assert kept == history[ctx.history_start :]  # newest turns, contiguous
    assert ctx.dropped == ctx.history_start > 0
    assert_no_split_tool_calls(kept)
    # History starts at a user's turn: never an answer or a call whose question was dropped.
    assert not kept or isinstance(kept[0], UserMessage)
    # Greedy: one more unit would not have fit, or would have started mid-turn.
    units = [u for u in turn_units(history) if u[1] <= ctx.history_start]
    if units:
        a, b = units[-1]
        assert ctx.tokens + window.count(history[a:b]) > window.budget or isinstance(
            history[a], ToolMessage | AssistantMessage
        )


def test_extra_tokens_for_tool_definitions_shrink_the_room() -> None:
    window = ContextWindow(max_tokens=1000, reserve_output=100)
    history = history_of(6)
    plain = asyncio.run(window.build("sys", history))
    with_tools = asyncio.run(window.build("sys", history, extra_tokens=300))
    assert plain.tokens <= 900 and with_tools.tokens <= 600
    assert with_tools.history_start > plain.history_start
    # a question that fits the whole budget but not what the tools leave of it
    n = next(n for n in range(1, 400) if window.count([UserMessage(content=words(n, "w"))]) > 650)
    big = [UserMessage(content=words(n, "w"))]
    assert asyncio.run(window.build("sys", [], big)).tokens <= 900
    with pytest.raises(ContextLengthError, match="300 for tools"):
        asyncio.run(window.build("sys", [], big, extra_tokens=300))


def test_new_messages_that_do_not_fit_raise() -> None:
    window = ContextWindow(max_tokens=100, reserve_output=50)
    with pytest.raises(ContextLengthError) as info:
        asyncio.run(window.build("sys", [], [UserMessage(content=words(100, "w"))]))
    assert info.value.limit == 50 and (info.value.needed or 0) > 50
    with pytest.raises(UserError, match="reserve_output"):
        ContextWindow(max_tokens=100, reserve_output=100)


class RecordingSummarizer:
    """Summarises by the first word of each message, keeping the newest 12 words in all."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []
        self.returned: list[str] = []

    async def __call__(self, messages: list[Message], previous: str | None) -> str:
        self.calls.append((len(messages), previous))
        heads = " ".join((m.content or "call").split()[0] for m in messages)
        words = ((previous + " | " if previous else "") + heads).split()
        self.returned.append(" ".join(words[-12:]))
        return self.returned[-1]


def test_summary_is_incremental_across_a_conversation() -> None:
    summarizer = RecordingSummarizer()
    window = ContextWindow(max_tokens=1600, reserve_output=100, summarize=summarizer)
    history: list[Message] = []
    summary: Summary | None = None
    covered_seen = []
    for i in range(30):
        new = turn(i, tools=1)[:1]
        ctx = asyncio.run(window.build("system", history, new, summary))
        assert ctx.tokens <= window.budget
        assert ctx.dropped == 0  # with a summariser nothing is lost
        if ctx.summary_changed:
            assert ctx.summary is not None
            assert ctx.summary.covered == ctx.history_start
            summary = ctx.summary
        else:
            assert ctx.summary == summary
        covered_seen.append(summary.covered if summary else 0)
        # The system prompt is never rewritten: the summary is a message of its own after it.
        assert ctx.messages[0] == SystemMessage(content="system")
        head = 2 if summary else 1
        kept = ctx.messages[head : len(ctx.messages) - 1]
        assert kept == history[ctx.history_start :]
        assert_no_split_tool_calls(kept)
        if summary:
            assert isinstance(ctx.messages[1], SystemMessage)
            assert summary.text in (ctx.messages[1].content or "")
        history += turn(i, tools=1)  # the turn is then appended to the session
    assert covered_seen == sorted(covered_seen)  # the summary only moves forward
    # Incremental: each call saw only newly dropped messages, and far fewer calls than turns.
    assert 2 <= len(summarizer.calls) <= 8
    assert sum(n for n, _ in summarizer.calls) == covered_seen[-1]
    # Each call got the summary the previous call made, not a recomputation from scratch.
    assert summarizer.calls[0][1] is None
    assert [p for _, p in summarizer.calls[1:]] == summarizer.returned[:-1]
    assert summary is not None and summary.text == summarizer.returned[-1]


def test_summary_without_system_prompt_and_without_summarizer() -> None:
    window = ContextWindow(max_tokens=400, reserve_output=100)
    history = history_of(6)
    summary = Summary(text="the customer wants a refund", covered=len(turn(0, tools=1)))
    ctx = asyncio.run(window.build(None, history, [UserMessage(content="hi")], summary))
    first = ctx.messages[0]
    assert isinstance(first, SystemMessage) and "refund" in first.content
    assert ctx.summary == summary and not ctx.summary_changed
    assert ctx.dropped == ctx.history_start - summary.covered > 0


def test_estimate_counts_cjk_and_ascii() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("hello 世界") == 2 + 2


@pytest.mark.shared
def test_estimate_is_conservative_against_the_glm_tokenizer() -> None:
    if not GLM_TOKENIZER.exists():
        pytest.skip(f"{GLM_TOKENIZER} is absent")
    import tiktoken

    ranks = {}
    for line in GLM_TOKENIZER.read_text().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    pat = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
        r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    enc = tiktoken.Encoding("glm4", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    samples = [
        "Where is my order A-1042? It was supposed to arrive on Monday.",
        "您好，我的订单A-1042什么时候到？我周一就应该收到了。",
        '{"order_id": "A-1042", "status": "shipped", "carrier": "SF Express"}',
        "退货政策：商品签收后七天内可无理由退货，运费由买家承担。Refunds take 3-5 business days.",
    ]
    for text in samples:
        assert estimate_tokens(text) >= len(enc.encode(text)), text
        assert estimate_tokens(text) <= 3 * len(enc.encode(text)), text
    # With the real count the window still keeps to its budget.
    window = ContextWindow(
        max_tokens=300, reserve_output=50, count_tokens=lambda s: len(enc.encode(s))
    )
    history = [UserMessage(content=samples[i % 4]) for i in range(40)]
    ctx = asyncio.run(window.build("客服助手", history, [UserMessage(content=samples[1])]))
    assert 0 < ctx.history_start < len(history)
    assert ctx.tokens <= window.budget


def test_conversation_memory_keeps_the_summary_with_the_session(tmp_path: Path) -> None:
    """A worker restart continues from the stored summary instead of summarising again."""
    summarizer = RecordingSummarizer()
    url = f"sqlite:///{tmp_path}/conv.db"

    async def talk(turns: range) -> tuple[list[int], str]:
        window = ContextWindow(max_tokens=900, reserve_output=100, summarize=summarizer)
        memory = ConversationMemory(url, window, tenant="acme")
        versions = []
        first_system = ""
        try:
            for i in turns:
                question = turn(i, tools=1)[:1]
                ctx = await memory.prepare("s", "system", question)
                assert ctx.context.tokens <= window.budget
                assert ctx.messages[-1] == question[0]
                assert ctx.messages[0] == SystemMessage(content="system")
                if isinstance(ctx.messages[1], SystemMessage):  # the summary, after the prompt
                    first_system = first_system or (ctx.messages[1].content or "")
                versions.append(
                    await memory.commit("s", turn(i, tools=1), expected_version=ctx.version)
                )
        finally:
            await memory.aclose()
        return versions, first_system

    assert asyncio.run(talk(range(10)))[0] == list(range(1, 11))
    calls_before = len(summarizer.calls)
    assert calls_before >= 1

    async def stored() -> Summary | None:
        async with open_store(url) as store:
            session = await store.load("acme", "s")
            assert session is not None
            return session.summary

    summary = asyncio.run(stored())
    assert summary is not None and summary.text == summarizer.returned[-1]
    versions, summary_message = asyncio.run(talk(range(10, 11)))  # a "restarted" worker
    assert versions == [11]
    if len(summarizer.calls) > calls_before:  # refreshed from the stored summary
        assert summarizer.calls[calls_before][1] == summary.text
        assert summarizer.returned[-1] in summary_message
    else:  # or sent as stored
        assert summary.text in summary_message
    assert summarizer.calls[0][1] is None and len(summarizer.calls) <= calls_before + 1


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    out: list[Message] = []
    for i in range(draw(st.integers(0, 12))):
        out += turn(i, tools=draw(st.integers(0, 3)), size=draw(st.integers(1, 30)))
    return out


@settings(max_examples=150, deadline=None)
@given(
    history=conversations(),
    budget=st.integers(40, 1500),
    keep=st.floats(0.0, 1.0),
    with_summarizer=st.booleans(),
)
def test_window_invariants(
    history: list[Message], budget: int, keep: float, with_summarizer: bool
) -> None:
    summarizer = RecordingSummarizer() if with_summarizer else None
    window = ContextWindow(budget + 64, 64, summarize=summarizer, keep_after_summary=keep)
    new = [UserMessage(content="q")]
    ctx = asyncio.run(window.build("sys", history, new))
    assert ctx.tokens == window.count(ctx.messages)
    assert ctx.tokens <= window.budget
    assert ctx.messages[0] == SystemMessage(content="sys")  # never rewritten
    # The summary, when it is sent, is a system message of its own right after the prompt.
    head = 2 if len(ctx.messages) > 2 and isinstance(ctx.messages[1], SystemMessage) else 1
    assert head == 1 or ctx.summary is not None
    assert ctx.messages[-1] == new[0]
    assert ctx.messages[head:-1] == history[ctx.history_start :]
    assert_no_split_tool_calls(ctx.messages[head:-1])
    if summarizer is None:
        assert ctx.dropped == ctx.history_start and ctx.summary is None
    else:
        assert ctx.dropped == 0
        covered = ctx.summary.covered if ctx.summary else 0
        assert covered == ctx.history_start  # every message is summarised or sent
        assert sum(n for n, _ in summarizer.calls) == covered
