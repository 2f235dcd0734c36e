"""The GLM-V and GLM-5.x formats beyond what the template tests prove: their parsers, the
documented behaviour of the unverified glm5 / glm52 renderings, and a damaged call's path
through the agent loop (the model is told, the tool never runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from glm_testdata import TEMPLATES, need

from glm_agent import Agent, tool
from glm_agent.exceptions import UserError
from glm_agent.glm import get_format
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from glm_agent.models.function import AgentInfo, FunctionModel

WEATHER = ToolDefinition(
    name="get_weather",
    description="天气",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
HISTORY: list[Message] = [
    SystemMessage(content="s"),
    UserMessage(content="hi"),
    AssistantMessage(content="yo", reasoning="old"),
    UserMessage(content="again"),
    AssistantMessage(content="ok"),
]


def test_glm41v_answers_and_refuses_tools() -> None:
    fmt = get_format("glm41v")
    m = fmt.parse("<think>看图</think><answer>一只猫<|begin_of_box|>[1,2]<|end_of_box|></answer>")
    assert (m.reasoning, m.content) == ("看图", "一只猫<|begin_of_box|>[1,2]<|end_of_box|>")
    assert fmt.parse("<think>cut off").reasoning == "cut off"
    assert fmt.parse("<think>a</think><answer>b", [WEATHER]).content == "b"
    p = fmt.stream_parser()
    events = [
        e for d in ["<thi", "nk>a</th", "ink><ans", "wer>b ", "c</answer>"] for e in p.feed(d)
    ]
    events += p.finish()
    assert "".join(getattr(e, "content", "") for e in events if e.kind == "text") == "b c"
    assert p.consistent and p.result.content == "b c"
    with pytest.raises(UserError, match="glm41v format has no tool"):
        fmt.render([UserMessage(content="q")], [WEATHER])
    assert fmt.generation_prompt() == "<|assistant|>\n"


def test_glm5_history_thinking_and_tools() -> None:
    glm5 = get_format("glm5")
    prompt = glm5.render(HISTORY, [WEATHER], add_generation_prompt=False)
    # past turns lose their reasoning (`</think>`); after the last user turn an empty block
    assert "<|assistant|></think>yo<|user|>again<|assistant|><think></think>ok" in prompt
    fn = json.dumps(WEATHER.to_openai()["function"], ensure_ascii=False)
    assert f"<tools>\n{fn}\n</tools>" in prompt  # function objects, not {"type": "function"...}
    kept = glm5.render(HISTORY, clear_thinking=False, add_generation_prompt=False)
    assert "<|assistant|><think>old</think>yo" in kept
    assert glm5.render([UserMessage(content="q")], enable_thinking=False).endswith(
        "<|assistant|></think>"
    )
    assert "Reasoning Effort" not in prompt


def test_glm52_reasoning_effort_and_cleared_history() -> None:
    glm52 = get_format("glm52")
    prompt = glm52.render(HISTORY, reasoning_effort="high")
    assert prompt.startswith("[gMASK]<sop><|system|>Reasoning Effort: High<|system|>s")
    assert "<|assistant|><think></think>yo" in prompt  # cleared history: an empty block
    for effort in (None, "low", "max", "HIGH"):  # 5.2 has max and high only
        assert "Reasoning Effort: Max" in glm52.render(HISTORY, reasoning_effort=effort)
    assert glm52.render(HISTORY, enable_thinking=False).endswith("<|assistant|></think>")


def test_glm53_thinks_always_and_keeps_history() -> None:
    glm53 = get_format("glm53")
    prompt = glm53.render(HISTORY, enable_thinking=False, reasoning_effort="low")
    assert prompt.startswith("[gMASK]<sop><|system|>Reasoning Effort: Low")
    assert "<|assistant|><think>old</think>yo" in prompt  # kept unless clear_thinking=True
    assert prompt.endswith("<|assistant|><think>")  # enable_thinking is ignored
    assert "<think></think>yo" in glm53.render(HISTORY, clear_thinking=True)
    calls = (ToolCall(id="a", name="get_weather"), ToolCall(id="b", name="get_weather"))
    turns: list[Message] = [
        UserMessage(content="q"),
        AssistantMessage(tool_calls=calls),
        ToolMessage(content="B", tool_call_id="b"),
        ToolMessage(content="A", tool_call_id="a"),
    ]
    assert glm53.render(turns, [WEATHER]).endswith(
        "<|observation|><tool_response>A</tool_response><tool_response>B</tool_response>"
        "<|assistant|><think>"
    )
    # An id missing: written in their own order.
    turns[3] = ToolMessage(content="A", tool_call_id="")
    assert "<tool_response>B</tool_response><tool_response>A</tool_response>" in glm53.render(
        turns, [WEATHER]
    )


def test_known_template_is_checked_without_jinja() -> None:
    path = need(TEMPLATES / "glm-5.3-flash.jinja")
    code = (
        "import sys; from glm_agent.glm import check_chat_template as c;"
        f"print(c(open({str(path)!r}, encoding='utf-8').read(), 'glm53'), 'jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "False"]


@pytest.mark.parametrize("family", ["glm45", "glm47", "glm5", "glm53"])
def test_a_damaged_call_goes_back_to_the_model(family: str) -> None:
    """A value the model cut short (`<arg_key>` inside it) reaches the loop as a call whose
    arguments are its raw text: the tool never runs, the model is told and calls again."""
    fmt = get_format(family)
    ran: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city.

        Args:
            city: The city.
        """
        ran.append(city)
        return "sunny"

    outputs = [
        "</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Pa"
        "<arg_key>x</arg_key><arg_value>ris</arg_value></tool_call>",
        "</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris"
        "</arg_value></tool_call>",
        "</think>It is sunny.",
    ]
    seen: list[list[Message]] = []

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage:
        seen.append(list(messages))
        return fmt.parse(outputs[len(seen) - 1], info.tools, enable_thinking=None)

    result = Agent(model=FunctionModel(turn), tools=[get_weather]).run("Weather?")
    assert ran == ["Paris"] and result.output == "It is sunny."
    error = seen[1][-1]
    assert isinstance(error, ToolMessage) and error.is_error
    assert "invalid arguments for tool 'get_weather'" in error.content
    # The next prompt writes the damaged call back as the model wrote it, next to the error.
    prompt = fmt.render(seen[1], [WEATHER])
    assert "<arg_value>Pa<arg_key>x</arg_key><arg_value>ris</arg_value></tool_call>" in prompt
