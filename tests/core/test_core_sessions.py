"""Agent.run(..., session_id=...): history from the memory store, within the context budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

from glm_agent import (
    Agent,
    AgentInfo,
    AssistantMessage,
    FunctionModel,
    Message,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    tool,
)
from glm_agent.memory import open_store


def echo_history(messages: list[Message], info: AgentInfo) -> str:
    """Answers with the user turns it can see, so tests can read what the model got."""
    if isinstance(messages[0], SystemMessage) and "Summarise" in messages[0].content:
        return "SUMMARY(" + str(messages[-1].content.count("user:")) + " user turns)"
    users = [m.content for m in messages if isinstance(m, UserMessage)]
    return " | ".join(users)


def test_sessions_survive_a_restart_and_are_scoped_by_tenant(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    agent = Agent(FunctionModel(echo_history), memory=url, system_prompt="Be kind.")
    assert agent.run("hello", session_id="s1").output == "hello"
    assert agent.run("my order?", session_id="s1").output == "hello | my order?"

    restarted = Agent(FunctionModel(echo_history), memory=url, system_prompt="Be kind.")
    result = restarted.run("thanks", session_id="s1")
    assert result.output == "hello | my order? | thanks"
    assert isinstance(result.messages[0], SystemMessage)
    assert restarted.run("hi", session_id="s1", tenant="other").output == "hi"

    session = asyncio.run(open_store(url).load("default", "s1"))
    assert session is not None
    assert [m.role for m in session.messages] == ["user", "assistant"] * 3
    assert session.turns == [2, 2, 2]


def test_tool_calls_are_stored_with_their_results(tmp_path: Path) -> None:
    @tool
    def lookup(order_id: str) -> str:
        """Look up.

        Args:
            order_id: Order.
        """
        return f"{order_id}: shipped"

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if isinstance(messages[-1], UserMessage):
            return AssistantMessage(tool_calls=(ToolCall.from_args("lookup", {"order_id": "A1"}),))
        return "shipped"

    store = open_store(f"sqlite:///{tmp_path / 'bot.db'}")
    Agent(FunctionModel(model_fn), tools=[lookup], memory=store).run("where?", session_id="s")
    session = asyncio.run(store.load("default", "s"))
    assert session is not None
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]
    result = session.messages[2]
    assert isinstance(result, ToolMessage) and result.content == "A1: shipped"


def test_old_turns_are_summarised_by_the_model_under_a_small_budget(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'bot.db'}")
    agent = Agent(
        FunctionModel(echo_history),
        memory=store,
        context_tokens=120,
        model_settings=ModelSettings(max_tokens=20),
    )
    window = agent.context_window()
    seen = []
    for i in range(8):
        seen.append(agent.run(f"question number {i} " + "words " * 6, session_id="s").messages)
    last = seen[-1]
    assert isinstance(last[0], SystemMessage) and "SUMMARY(" in last[0].content
    assert window.count(last[:-1]) <= window.budget
    session = asyncio.run(store.load("default", "s"))
    assert session is not None and session.summary is not None
    assert len(session.messages) == 16  # everything is kept in the store, only the context is cut


def test_concurrent_runs_on_one_session_never_interleave(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'bot.db'}")
    agent = Agent(FunctionModel(lambda m, i: "ok"), memory=store)

    async def main() -> None:
        await asyncio.gather(*(agent.arun(f"q{i}", session_id="s") for i in range(10)))

    asyncio.run(main())
    session = asyncio.run(store.load("default", "s"))
    assert session is not None and session.turns == [2] * 10
    pairs = list(zip(session.messages[::2], session.messages[1::2], strict=True))
    assert all(u.role == "user" and a.role == "assistant" for u, a in pairs)
    assert sorted(u.content for u, _ in pairs) == sorted(f"q{i}" for i in range(10))


def test_long_term_memory_tools_are_scoped_per_customer(tmp_path: Path) -> None:
    from glm_agent.memory import LongTermMemory

    def embed(texts: list[str]) -> list[list[float]]:
        # A bag of letters: similar words get similar vectors (enough for a real cosine search).
        return [[float(t.lower().count(c)) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts]

    ltm = LongTermMemory(f"sqlite:///{tmp_path / 'facts.db'}", embed)

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        last = messages[-1]
        if isinstance(last, UserMessage) and last.content.startswith("remember "):
            fact = last.content.removeprefix("remember ")
            return AssistantMessage(tool_calls=(ToolCall.from_args("remember", {"fact": fact}),))
        if isinstance(last, UserMessage):
            return AssistantMessage(
                tool_calls=(ToolCall.from_args("recall", {"query": "delivery"}),)
            )
        assert isinstance(last, ToolMessage)
        return last.content

    agent = Agent(FunctionModel(model_fn), long_term_memory=ltm)
    assert {"remember", "recall"} <= set(agent.tools.names)
    agent.run("remember Prefers delivery after 6 pm", metadata={"customer_id": "c1"})
    agent.run("remember Allergic to peanuts", metadata={"customer_id": "c1"})
    recalled = agent.run("when to deliver?", metadata={"customer_id": "c1"}).output
    assert recalled.splitlines()[0] == "- Prefers delivery after 6 pm"
    assert agent.run("when?", metadata={"customer_id": "c2"}).output == (
        "no saved facts about this customer match"
    )


def test_tool_definitions_count_against_the_session_budget(tmp_path: Path) -> None:
    """The tools block is part of the prompt: a big one leaves less room for history."""

    def big(q: str) -> str:
        return q

    big.__doc__ = "Look things up. " + "Very detailed instructions. " * 60 + "\n\nArgs:\n    q: Q."
    url = f"sqlite:///{tmp_path / 'bot.db'}"

    def kept(tools: list[object]) -> int:
        agent = Agent(
            FunctionModel(echo_history),
            memory=url,
            tools=tools,
            context_tokens=2200,
            model_settings=ModelSettings(max_tokens=1000),
        )
        session = f"s{len(tools)}"
        for i in range(12):
            agent.run(f"question number {i} " + "words " * 20, session_id=session)
        last = agent.run("last", session_id=session)
        return str(last.output).count("question number")

    from glm_agent.tools import function_tool

    assert kept([function_tool(big)]) < kept([])
