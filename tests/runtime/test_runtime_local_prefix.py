"""Prefix reuse end to end: an Agent on LocalGLM (tiny_glm, the real tokenizer and glm4 format)
with a SQLite session store prefills only the tokens that are new at each step, turn and
session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from glm_agent import Agent
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolDefinition,
    UserMessage,
)
from glm_agent.models.local import LocalGLM
from glm_agent.settings import ModelSettings

pytestmark = pytest.mark.shared

OBSERVATION, USER = 151338, 151336
SYSTEM = "You are the support assistant of a weather shop. Answer briefly."
FORCED = ModelSettings(temperature=0, max_tokens=40)


def get_weather(city: str) -> str:
    """Weather of a city.

    Args:
        city: The city.
    """
    return f"{city}: sunny, 21 C"


class Script:
    """A logits hook that makes the model write each scripted output in turn (then its stop)."""

    def __init__(self, model: LocalGLM, outputs: list[tuple[str, int]]) -> None:
        self.queue = [[*model.tokenizer.encode(text), stop] for text, stop in outputs]
        self.current: list[int] = []

    def __call__(self, logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        if not generated[0]:
            self.current = self.queue.pop(0)
        out = torch.full_like(logits, float("-inf"))
        out[:, self.current[min(len(generated[0]), len(self.current) - 1)]] = 0.0
        return out


@pytest.fixture
def local(tiny_glm_dir: Path) -> Iterator[LocalGLM]:
    model = LocalGLM(tiny_glm_dir, prefill_chunk=64)
    yield model
    model.batcher.close()


def test_agent_sessions_prefill_only_new_tokens(local: LocalGLM, tmp_path: Path) -> None:
    local.logits_hook = Script(
        local,
        [
            ('get_weather\n{"city": "Paris"}', OBSERVATION),
            ("\nParis is sunny today.", USER),
            ('get_weather\n{"city": "Rome"}', OBSERVATION),
            ("\nRome is sunny too.", USER),
            ('get_weather\n{"city": "Oslo"}', OBSERVATION),
            ("\nOslo is sunny.", USER),
        ],
    )
    agent = Agent(
        local,
        tools=[get_weather],
        system_prompt=SYSTEM,
        memory=f"sqlite:///{tmp_path / 'bot.db'}",
        model_settings=FORCED,
    )
    store = local.prefix_cache
    assert store is not None
    first = agent.run("Weather in Paris?", session_id="customer-1")
    second = agent.run("And in Rome?", session_id="customer-1")  # history from SQLite
    assert first.output == "Paris is sunny today." and second.output == "Rome is sunny too."
    steps = [s.response.usage for s in (*first.steps, *second.steps)]
    assert len(steps) == 4
    # Each request reuses the whole previous prompt and everything the model wrote after it
    # (less its stop token, which is sampled but never fed back): only tool results, the
    # template's glue and the user's new question are prefilled.
    assert store.stats.prompt_tokens == sum(u.input_tokens for u in steps)
    assert store.stats.reused_tokens == sum(
        prev.input_tokens + prev.output_tokens - 1 for prev in steps[:-1]
    )

    # A new session shares the system prompt and the tools with the first one.
    before = store.stats.reused_tokens
    other = agent.run("Weather in Oslo?", session_id="customer-2")
    assert other.output == "Oslo is sunny."
    tool = ToolDefinition(
        name="get_weather",
        description="Weather of a city.",
        parameters=agent.tools.definitions()[0].parameters,
    )
    head = local.format.render([SystemMessage(content=SYSTEM)], [tool], add_generation_prompt=False)
    shared = len(local.tokenizer.encode_prompt(head))
    assert store.stats.reused_tokens - before >= shared
    assert store.stats.requests == 6


def test_shared_weights_with_and_without_reuse_answer_alike(
    local: LocalGLM, tiny_glm_dir: Path
) -> None:
    off = LocalGLM(tiny_glm_dir, loaded=local.loaded, prefix_cache_bytes=0)
    assert off.loaded.model is local.loaded.model and off.prefix_cache is None
    greedy = ModelSettings(temperature=0, max_tokens=8)
    messages: list[Message] = [SystemMessage(content=SYSTEM), UserMessage(content="Hi! 你好")]
    for turn in range(3):
        on_reply = local.request_sync(messages, settings=greedy)
        off_reply = off.request_sync(messages, settings=greedy)
        assert on_reply.message == off_reply.message and on_reply.usage == off_reply.usage
        messages += [on_reply.message, UserMessage(content=f"And question {turn}?")]
    store = local.prefix_cache
    assert store is not None and store.stats.reused_tokens > 0
    off.batcher.close()


def test_preserved_thinking_keeps_earlier_reasoning_in_the_prompt(
    local: LocalGLM, tiny_glm_dir: Path
) -> None:
    preserved = LocalGLM(tiny_glm_dir, family="glm47", clear_thinking=False, loaded=local.loaded)
    cleared = LocalGLM(tiny_glm_dir, family="glm47", loaded=local.loaded)
    messages: list[Message] = [
        UserMessage(content="Hi"),
        AssistantMessage(reasoning="A greeting: greet back.", content="Hello!"),
        UserMessage(content="Where is order A-1042?"),
    ]
    greedy = ModelSettings(temperature=0, max_tokens=2)
    for model, clear in ((preserved, False), (cleared, None)):
        prompt = model.format.render(messages, clear_thinking=clear)
        assert ("A greeting" in prompt) is (clear is False)
        usage = model.request_sync(messages, settings=greedy).usage
        assert usage.input_tokens == len(model.tokenizer.encode_prompt(prompt))
        model.batcher.close()
