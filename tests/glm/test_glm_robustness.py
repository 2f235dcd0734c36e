"""Property tests, one per class of parser failure found against peers' test suites and
adversarial outputs (issue 20): values holding tags, damaged calls, non-finite numbers, invalid
Unicode, double-encoded arrays / objects, a re-opened `<think>`. Every property is checked on the
one-shot parser and on the streaming parser fed random splits (their results must agree).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent.glm import get_format
from glm_agent.messages import AssistantMessage, ToolCall, ToolDefinition, UserMessage

SETTINGS = settings(max_examples=80, deadline=None)
XML = ["glm45", "glm47", "glm5", "glm52", "glm53"]
TAGS = ["<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"]
SCHEMA = {
    "type": "object",
    "properties": {
        "s": {"type": "string"},
        "t": {"type": "string"},
        "n": {"type": "number"},
        "i": {"type": "integer"},
        "a": {"type": "array"},
        "o": {"type": "object"},
        "u": {},
        "au": {"type": ["array", "string"]},
    },
}
TOOLS = [ToolDefinition(name="f", parameters=SCHEMA), ToolDefinition(name="g", parameters=SCHEMA)]


def strict_loads(text: str) -> Any:
    def no_constant(name: str) -> Any:
        raise ValueError(name)

    return json.loads(text, parse_constant=no_constant)


def is_json(text: str) -> bool:
    try:
        strict_loads(text)
    except ValueError:
        return False
    return True


def parse_both(family: str, raw: str, seed: int, thinking: bool | None = False) -> AssistantMessage:
    """The one-shot parse, after checking that the stream parser (random splits) agrees.

    With thinking off, a family whose prompt opens `<think>` anyway (glm53) gets the `</think>`
    the model writes first.
    """
    fmt = get_format(family)
    if thinking is False and fmt.opens_thinking(False):
        raw = "</think>" + raw
    one = fmt.parse(raw, TOOLS, enable_thinking=thinking)
    rng = random.Random(seed)
    p = fmt.stream_parser(TOOLS, enable_thinking=thinking)
    events = []
    i = 0
    while i < len(raw):
        k = rng.randint(1, 12)
        events += p.feed(raw[i : i + k])
        i += k
    events += p.finish()
    streamed = p.result
    assert (streamed.content, streamed.reasoning) == (one.content, one.reasoning)
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == [
        (c.name, c.arguments) for c in one.tool_calls
    ]
    for e in events:
        json.dumps(e.model_dump(), ensure_ascii=False).encode("utf-8")  # every event encodes
    return one


def render_output(family: str, calls: list[tuple[str, dict[str, Any]]]) -> str:
    """What the model writes for these calls (the template's own bytes), thinking off."""
    fmt = get_format(family)
    turn = AssistantMessage(tool_calls=tuple(ToolCall.from_args(n, a) for n, a in calls))
    prefix = [UserMessage(content="q")]
    before = fmt.render(prefix, TOOLS, add_generation_prompt=False, enable_thinking=False)
    after = fmt.render([*prefix, turn], TOOLS, add_generation_prompt=False, enable_thinking=False)
    out = after[len(before) + len("<|assistant|>") :]
    for opener in ("\n<think></think>", "</think>", "<think></think>"):  # thinking-off history
        if out.startswith(opener):
            return out[len(opener) :]
    return out


# --- 1. a string value holding tags: read whole, or the call is damaged; never cut short --------

SAFE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="<"), max_size=6
)
TAGGY = st.lists(
    st.sampled_from([*TAGS, "a", " ", "\n", "<", ">", "/", "arg_value", "中"]), max_size=8
).map("".join)


def closes(value: str) -> bool:
    """Whether the value holds `</arg_value>` + whitespace + `</tool_call>`: then the output
    also reads as a call ending there followed by other text, which no parser can rule out
    when that text is well-formed (the engines share this limit)."""
    i = value.find("</arg_value>")
    while i != -1:
        if value[i + len("</arg_value>") :].lstrip().startswith("</tool_call>"):
            return True
        i = value.find("</arg_value>", i + 1)
    return False


def unambiguous(value: str) -> bool:
    """No opening argument tag, and no `</arg_value>` that a reader could take for the end."""
    if "<arg_key>" in value or "<arg_value>" in value:
        return False
    probe = value + "</arg_value></tool_call>"
    i = probe.find("</arg_value>")
    while i < len(value):
        after = probe[i + len("</arg_value>") :].lstrip()
        if after.startswith(("<arg_key>", "</tool_call>", "<tool_call>")):
            return False
        i = probe.find("</arg_value>", i + 1)
    return True


@SETTINGS
@given(family=st.sampled_from(XML), s=TAGGY, t=TAGGY, seed=st.integers(0, 99))
def test_tags_inside_values_are_kept_or_the_call_is_damaged(
    family: str, s: str, t: str, seed: int
) -> None:
    args = {"s": s, "t": t}
    got = parse_both(family, render_output(family, [("f", args)]), seed)
    assert got.tool_calls
    arguments = got.tool_calls[0].arguments
    if unambiguous(s) and unambiguous(t):
        assert len(got.tool_calls) == 1
        assert strict_loads(arguments) == args  # read whole, `</arg_value>` inside included
    elif not closes(s) and not closes(t):
        assert len(got.tool_calls) == 1
        assert not is_json(arguments) or strict_loads(arguments) == args  # never cut short


@SETTINGS
@given(
    family=st.sampled_from(XML),
    before=SAFE_TEXT,
    after=st.sampled_from(TAGS),
    tail=SAFE_TEXT,
    seed=st.integers(0, 99),
)
def test_a_value_cut_at_its_end_tags_is_caught_by_what_follows(
    family: str, before: str, after: str, tail: str, seed: int
) -> None:
    """A value holding `</arg_value></tool_call>` then a tag that cannot stand outside a call
    (or an empty block): the call that seemed to end there is damaged, not run cut short."""
    value = f"{before}</arg_value></tool_call>{tail}{after}"
    got = parse_both(family, render_output(family, [("f", {"s": value})]), seed)
    assert got.tool_calls  # (`<tool_call>` after: a block whose name is `</arg_value>`)
    assert all(not is_json(c.arguments) for c in got.tool_calls)


# --- 2. a damaged output never yields a call that runs with other arguments ---------------------

SAFE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="<"), max_size=12)
VALUES = {
    "s": SAFE,
    "n": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "i": st.integers(-(10**6), 10**6),
    "a": st.lists(st.integers(0, 9), max_size=3),
    "o": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 9), max_size=2),
}


@st.composite
def some_calls(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    calls = []
    for _ in range(draw(st.integers(1, 3))):
        keys = draw(st.lists(st.sampled_from(sorted(VALUES)), unique=True, max_size=3))
        calls.append((draw(st.sampled_from(["f", "g"])), {k: draw(VALUES[k]) for k in keys}))
    return calls


@SETTINGS
@given(
    family=st.sampled_from(XML),
    calls=some_calls(),
    cut=st.one_of(st.just(-1), st.integers(0, 10_000)),
    drop=st.integers(0, 10_000),
    seed=st.integers(0, 99),
)
def test_damaged_calls_never_run_with_partial_arguments(
    family: str, calls: list[tuple[str, dict[str, Any]]], cut: int, drop: int, seed: int
) -> None:
    raw = render_output(family, calls)
    if cut >= 0:  # output cut off anywhere
        raw = raw[: cut % (len(raw) + 1)]
    else:  # one structural tag left out
        spots = [(i, t) for t in TAGS for i in range(len(raw)) if raw.startswith(t, i)]
        i, tag = spots[drop % len(spots)]
        raw = raw[:i] + raw[i + len(tag) :]
    got = parse_both(family, raw, seed)
    intended = [(name, args) for name, args in calls]
    for call in got.tool_calls:
        if is_json(call.arguments):
            assert (call.name, strict_loads(call.arguments)) in intended
        else:
            assert call.arguments in raw  # a damaged call: the model's own text, for the model


# --- 3. finite JSON only --------------------------------------------------------------------------

NON_FINITE = st.sampled_from(
    ["NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1E400", "nan", "inf", "1e309"]
)
NUMBERISH = st.one_of(
    NON_FINITE,
    NON_FINITE.map(lambda x: f"[1, {x}]"),
    NON_FINITE.map(lambda x: f'{{"k": {x}}}'),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.integers().map(str),
)


def assert_finite(value: Any) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, list):
        for v in value:
            assert_finite(v)
    elif isinstance(value, dict):
        for v in value.values():
            assert_finite(v)


@SETTINGS
@given(
    family=st.sampled_from([*XML, "glm4"]),
    values=st.dictionaries(st.sampled_from(["n", "i", "u", "a", "o", "s"]), NUMBERISH, min_size=1),
    seed=st.integers(0, 99),
)
def test_arguments_are_finite_json(family: str, values: dict[str, str], seed: int) -> None:
    if family == "glm4":
        raw = "f\n{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}"
    else:
        pairs = "".join(
            f"<arg_key>{k}</arg_key><arg_value>{v}</arg_value>" for k, v in values.items()
        )
        raw = f"<tool_call>f{pairs}</tool_call>"
    got = parse_both(family, raw, seed)
    for call in got.tool_calls:
        args = strict_loads(call.arguments)  # no NaN / Infinity literals
        assert_finite(args)
        json.dumps(args, allow_nan=False)
    if family != "glm4":
        assert len(got.tool_calls) == 1  # a non-finite value is kept as its text, not dropped
        args = strict_loads(got.tool_calls[0].arguments)
        for k, v in values.items():
            if any(x in v for x in ("NaN", "Infinity", "nan", "inf", "e9", "E4", "e3")):
                assert args[k] == v.strip() or (k == "s" and args[k] == v)


# --- 4. valid Unicode (UTF-8) only --------------------------------------------------------------

ESCAPES = st.sampled_from(["\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u00e9", "\\udc00x"])
WILD = st.text(max_size=6)  # includes lone surrogates (category Cs)


@SETTINGS
@given(
    family=st.sampled_from([*XML, "glm4", "glm41v", "chatglm3"]),
    esc=ESCAPES,
    text=WILD,
    seed=st.integers(0, 99),
)
def test_everything_parsed_encodes_as_utf8(family: str, esc: str, text: str, seed: int) -> None:
    if family == "glm4":
        raw = f'{text}<|assistant|>f\n{{"u": "{esc}", "s": "{esc}"}}'
    else:
        raw = (
            f"<think>{text}</think>{text}<tool_call>f<arg_key>u</arg_key><arg_value>"
            f'"{esc}"</arg_value><arg_key>s</arg_key><arg_value>{text}</arg_value></tool_call>'
        )
    got = parse_both(family, raw, seed)
    (got.content or "").encode("utf-8")
    (got.reasoning or "").encode("utf-8")
    for call in got.tool_calls:
        call.arguments.encode("utf-8")
        json.dumps(strict_loads(call.arguments), ensure_ascii=False).encode("utf-8")


# --- 5. double-encoded arrays / objects: decoded where (and only where) the schema says so -------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
CONTAINER = st.lists(JSONISH, max_size=3) | st.dictionaries(
    st.text(max_size=3), JSONISH, max_size=3
)


@SETTINGS
@given(
    family=st.sampled_from([*XML, "glm4"]),
    value=CONTAINER,
    key=st.sampled_from(["a", "o", "s", "u", "au"]),
    seed=st.integers(0, 99),
)
def test_double_encoded_containers(family: str, value: Any, key: str, seed: int) -> None:
    once = json.dumps(value, ensure_ascii=False)  # the container as JSON text
    twice = json.dumps(once, ensure_ascii=False)  # ... written once more as a JSON string
    if family == "glm4":
        raw = "f\n" + json.dumps({key: once}, ensure_ascii=False)  # a string holding JSON
    else:
        raw = f"<tool_call>f<arg_key>{key}</arg_key><arg_value>{twice}</arg_value></tool_call>"
    got = parse_both(family, raw, seed)
    (arg,) = strict_loads(got.tool_calls[0].arguments).values()
    wanted = {"a": "array", "o": "object"}.get(key)
    kind = "array" if isinstance(value, list) else "object"
    if wanted == kind:
        assert arg == value  # decoded: the schema wants this container and no string
    elif key == "s" and family != "glm4":
        assert arg == twice  # a string parameter: the raw text, byte-exact
    else:
        assert arg == once  # untyped, a string-admitting union, or the other container: a string


# --- 6. a re-opened <think> never stays in the reasoning ----------------------------------------

THOUGHT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="<"), max_size=12
)


@SETTINGS
@given(
    family=st.sampled_from(["glm47", "glm5", "glm52", "glm53"]),
    ws=st.sampled_from(["", "\n", " \n "]),
    reasoning=THOUGHT,
    answer=st.none() | THOUGHT,
    seed=st.integers(0, 99),
)
def test_reopened_think_is_not_reasoning(
    family: str, ws: str, reasoning: str, answer: str | None, seed: int
) -> None:
    raw = f"{ws}<think>{reasoning}" + (f"</think>{answer}" if answer is not None else "")
    got = parse_both(family, raw, seed, thinking=None)  # the prompt already opened <think>
    assert got.reasoning == (reasoning.strip() or None)
    assert got.content == ((answer or "").strip() or None)
