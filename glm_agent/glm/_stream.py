"""Streaming parser: decoded text deltas in, content / reasoning / tool-call events out.

Guarantees (tested over every split of short outputs and random splits of long ones):

1. `result` (after `finish()`) equals `parse()` of the whole text, except for call ids, which
   are the ids announced in the events.
2. Text is emitted only once it is known to be content (or reasoning): a partial tag, trailing
   whitespace (content is stripped), possible trailing stop markers, a glm4 first line that may
   still be a tool name, and a glm4 call segment are held back until they resolve. So the
   `TextDelta`s concatenated equal `result.content` and the `ReasoningDelta`s `result.reasoning`.
3. `ToolCallEnd.call` is exactly `result.tool_calls[index]`; the `ToolCallArgsDelta`s of a call
   concatenated equal its `arguments` (one delta per complete argument for GLM-4.5+, one for
   the whole object for glm4, whose JSON is only known valid at the end of its segment).

Two exceptions to 2 and 3, both flagged by `consistent` being False (`result` stays right):
the spec's late reasoning rule (an output of glm45 / glm47 with thinking off / glm4-0414 that
does not open with `<think>` is streamed as content, but a later `</think>` makes everything
before it reasoning, README §5), and a repeated argument key in one GLM-4.5+ call (the last
value wins in `arguments`, after the first was already streamed). Waiting for the end of the
output instead would stop streaming for every thinking-off answer.

A `ToolCallStart` is sent as soon as a registered tool name opens a call. If the call never
completes (output cut off, glm4 JSON invalid), it gets no `ToolCallEnd`, its text becomes
content, and the next call reuses its index with a new id: consumers commit on `ToolCallEnd`.
"""

from __future__ import annotations

from collections.abc import Sequence
from json import dumps as _dumps
from typing import TYPE_CHECKING, Any

from glm_agent.glm._channel import (
    Channel,
    hold_from,
    reasoning_event,
    text_event,
    without_partial_tag,
)
from glm_agent.glm._facts import STOP_MARKERS
from glm_agent.glm._parse import PAIR, ParsedCall, Toolbox, glm4_call
from glm_agent.messages import (
    AssistantMessage,
    ModelStreamEvent,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
    new_call_id,
)

if TYPE_CHECKING:
    from glm_agent.glm._format import GLMFormat

__all__ = ["GLMStreamParser"]

_ASSISTANT = "<|assistant|>"
_THINK, _END_THINK = "<think>", "</think>"
_CALL, _END_CALL = "<tool_call>", "</tool_call>"
_NAME_ENDS = ("<arg_key>", _END_CALL)
_PLAIN_MODES = frozenset(("content", "seg_text"))
_HELD_MODES = frozenset(("block", "seg_call"))


class GLMStreamParser:
    """Incremental parser of one model output (see the module docstring for its guarantees)."""

    def __init__(
        self,
        fmt: GLMFormat,
        tools: Sequence[ToolDefinition] = (),
        *,
        enable_thinking: bool | None = None,
    ) -> None:
        self._fmt = fmt
        self._box = Toolbox(tools)
        self._enable_thinking = enable_thinking
        self._chunks: list[str] = []
        self._tail = ""
        self._text = Channel(text_event)
        self._reason = Channel(reasoning_event)
        fam = fmt.family
        self._xml = fam in ("glm45", "glm47")
        self._forced_reasoning = fam == "glm47" and enable_thinking is not False
        self._mode = "content" if fam == "chatglm3" else ("start" if fam != "glm4" else "seg")
        self._after_reasoning = "content" if self._xml else "seg"
        self._strip_think = False
        self._committed: list[tuple[str, ParsedCall]] = []
        self._open: tuple[str, str] | None = None  # (id, name) of a started call
        self._open_args: list[str] = []
        self._args: dict[str, Any] = {}
        self._pair_pos = -1
        self._scan = 0
        self._done = False
        self.consistent = True
        """False when a late `</think>` (or a repeated argument key) made events disagree."""
        self._result: AssistantMessage | None = None

    @property
    def result(self) -> AssistantMessage:
        """The parsed message (equal to `parse()` of the whole text); after `finish()`."""
        if self._result is None:
            raise RuntimeError("result is set by finish(); call it first")
        return self._result

    # --- public -----------------------------------------------------------------------------

    def feed(self, delta: str) -> list[ModelStreamEvent]:
        """Take the next decoded text; return the events it settles."""
        if self._done:
            raise RuntimeError("feed() after finish()")
        out: list[ModelStreamEvent] = []
        if delta:
            self._chunks.append(delta)
            if "<" not in delta:  # fast paths: no tag can start or end in this delta
                mode = self._mode
                if not self._tail and (mode in _PLAIN_MODES or self._plain_reasoning):
                    (self._reason if mode == "reasoning" else self._text).push(delta, out)
                    return out
                if mode in _HELD_MODES and self._open is not None and "<" not in self._tail[-16:]:
                    self._tail += delta
                    return out
            self._tail += delta
            self._advance(out)
        return out

    def finish(self) -> list[ModelStreamEvent]:
        """End of output: return the remaining events and set `result`."""
        out: list[ModelStreamEvent] = []
        if self._done:
            return out
        self._done = True
        parts = self._fmt.parse_parts(
            "".join(self._chunks), self._box, enable_thinking=self._enable_thinking
        )
        self._settle(self._reason, parts.reasoning, out)
        self._settle(self._text, parts.content, out)
        ids: list[str] = []
        for i, call in enumerate(parts.calls):
            if i < len(self._committed) and self._committed[i][1] == call:
                ids.append(self._committed[i][0])
                continue
            if i < len(self._committed):
                self.consistent = False
            args = call.arguments()
            if self._open is not None and self._open[1] == call.name and i == len(self._committed):
                cid = self._open[0]
                sent = "".join(self._open_args)
                if not args.startswith(sent):
                    self.consistent = False
                    sent = ""
                self._open = None
            else:
                cid, sent = new_call_id(), ""
                out.append(ToolCallStart(index=i, id=cid, name=call.name))
            if args[len(sent) :]:
                out.append(ToolCallArgsDelta(index=i, id=cid, delta=args[len(sent) :]))
            out.append(self._end(i, cid, call))
            ids.append(cid)
        if len(parts.calls) < len(self._committed):
            self.consistent = False
        self._result = parts.message(ids)
        return out

    # --- helpers ----------------------------------------------------------------------------

    def _settle(self, ch: Channel, final: str | None, out: list[ModelStreamEvent]) -> None:
        sent = "".join(ch.emitted)
        final = final or ""
        if final.startswith(sent):
            if final[len(sent) :]:
                ch.emitted.append(final[len(sent) :])
                out.append(ch.make(final[len(sent) :]))
        else:
            self.consistent = False

    def _end(self, index: int, cid: str, call: ParsedCall) -> ModelStreamEvent:
        tc = ToolCall(id=cid, name=call.name, arguments=call.arguments())
        return ToolCallEnd(index=index, call=tc)

    def _start_call(self, name: str, out: list[ModelStreamEvent]) -> None:
        cid = new_call_id()
        self._open = (cid, name)
        self._open_args = []
        out.append(ToolCallStart(index=len(self._committed), id=cid, name=name))

    def _args_delta(self, piece: str, out: list[ModelStreamEvent]) -> None:
        assert self._open is not None
        self._open_args.append(piece)
        out.append(ToolCallArgsDelta(index=len(self._committed), id=self._open[0], delta=piece))

    def _commit(self, call: ParsedCall, out: list[ModelStreamEvent]) -> None:
        assert self._open is not None
        cid = self._open[0]
        out.append(self._end(len(self._committed), cid, call))
        self._committed.append((cid, call))
        self._open = None

    # --- the state machine ------------------------------------------------------------------

    def _advance(self, out: list[ModelStreamEvent]) -> None:
        while True:
            mode = self._mode
            if mode == "content":
                progressed = self._content(out)
            elif mode == "block":
                progressed = self._block(out)
            elif mode == "bad_block":
                progressed = self._bad_block(out)
            elif mode == "seg":
                progressed = self._seg_start(out)
            elif mode == "seg_text":
                progressed = self._seg_text(out)
            elif mode == "seg_call":
                progressed = self._seg_call(out)
            elif mode == "reasoning":
                progressed = self._reasoning(out)
            else:
                progressed = self._start()
            if not progressed or not self._tail:
                return

    def _start(self) -> bool:
        s = self._tail.lstrip()
        if self._forced_reasoning:
            if not s or _THINK.startswith(s):
                return False
            self._strip_think = s.startswith(_THINK)
            self._mode = "reasoning"
            return True
        if not s or (_THINK.startswith(s) and s != _THINK):
            return False
        if s.startswith(_THINK):
            self._tail = s[len(_THINK) :]
            self._mode = "reasoning"
        else:
            self._mode = self._after_reasoning
        return True

    @property
    def _plain_reasoning(self) -> bool:
        return self._mode == "reasoning" and not self._strip_think

    def _reasoning(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        e = tail.find(_END_THINK)
        if e != -1:
            head = tail[:e]
            if self._strip_think:
                head = head.lstrip()[len(_THINK) :]
            self._reason.push(head, out)
            self._tail = tail[e + len(_END_THINK) :]
            self._mode = self._after_reasoning
            return True
        if not self._strip_think:
            j = hold_from(tail, (_END_THINK,))
            self._reason.push(tail[:j], out)
            self._tail = tail[j:]
        return False

    # XML families ---------------------------------------------------------------------------

    def _content(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        if self._xml:
            b = tail.find(_CALL)
            if b != -1:
                self._text.push(tail[:b], out)
                self._tail = tail[b + len(_CALL) :]
                self._mode = "block"
                self._pair_pos = -1
                self._scan = 0
                self._args = {}
                return True
        j = hold_from(tail, (_CALL,) if self._xml else ())
        if j:
            self._text.push(tail[:j], out)
            self._tail = tail[j:]
        return False

    def _bad_block(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        e = tail.find(_END_CALL)
        if e != -1:
            self._text.push(tail[: e + len(_END_CALL)], out)
            self._tail = tail[e + len(_END_CALL) :]
            self._mode = "content"
            return True
        j = hold_from(tail, (_END_CALL,))
        self._text.push(tail[:j], out)
        self._tail = tail[j:]
        return False

    def _block(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        e = tail.find(_END_CALL, self._scan)
        if self._open is None:
            k = tail.find("<arg_key>")
            stop = min((x for x in (k, e) if x != -1), default=-1)
            cand = tail[:stop] if stop != -1 else without_partial_tag(tail, _NAME_ENDS)
            name = cand.strip()
            if (stop != -1 and name not in self._box.names) or not self._box.could_be_name(
                cand.lstrip()
            ):
                self._text.push(_CALL, out)
                self._mode = "bad_block"
                return True
            if stop == -1:
                return False
            self._start_call(name, out)
            self._pair_pos = k if k != -1 and (e == -1 or k < e) else -1
        if self._pair_pos != -1:
            end = e if e != -1 else tail.rfind("</arg_value>", self._pair_pos) + 12
            if end > self._pair_pos:
                typer = self._box.typer(self._open[1])  # type: ignore[index]
                for m in PAIR.finditer(tail, self._pair_pos, end):
                    key = m.group(1).strip()
                    value = typer(key, m.group(2))
                    if key in self._args:
                        self.consistent = False  # a repeated key: the last value wins
                    self._args[key] = value
                    frag = (
                        _dumps(key, ensure_ascii=False) + ": " + _dumps(value, ensure_ascii=False)
                    )
                    self._args_delta(("{" if len(self._open_args) == 0 else ", ") + frag, out)
                    self._pair_pos = m.end()
        if e == -1:
            self._scan = max(0, len(tail) - len(_END_CALL))
            return False
        self._args_delta("}" if self._open_args else "{}", out)
        self._commit(ParsedCall(self._open[1], self._args), out)  # type: ignore[index]
        self._tail = tail[e + len(_END_CALL) :]
        self._mode = "content"
        return True

    # glm4 segments ----------------------------------------------------------------------------

    def _seg_start(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        a = tail.find(_ASSISTANT)
        seg = (tail[:a] if a != -1 else tail).lstrip()
        if not seg:
            self._tail = tail[a + len(_ASSISTANT) :] if a != -1 else ""
            return a != -1
        if a == -1:
            self._tail = seg
        else:
            self._tail = seg + tail[a:]
        nl = seg.find("\n")
        if nl != -1 and seg[:nl].strip() in self._box.names:
            self._start_call(seg[:nl].strip(), out)
            self._scan = 0
            self._mode = "seg_call"
            return True
        if nl == -1 and a == -1:
            head = without_partial_tag(seg, (_ASSISTANT, *STOP_MARKERS))
            if self._box.could_be_name(head):
                return False
        self._text.new_segment()
        self._mode = "seg_text"
        return True

    def _seg_text(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        a = tail.find(_ASSISTANT)
        if a != -1:
            self._text.push(tail[:a], out)
            self._tail = tail[a + len(_ASSISTANT) :]
            self._mode = "seg"
            return True
        j = hold_from(tail, (_ASSISTANT,))
        self._text.push(tail[:j], out)
        self._tail = tail[j:]
        return False

    def _seg_call(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        a = tail.find(_ASSISTANT, self._scan)
        if a == -1:
            self._scan = max(0, len(tail) - len(_ASSISTANT))
            return False
        seg = tail[:a].strip()
        call = glm4_call(seg, self._box)
        if call is not None:
            self._args_delta(call.arguments(), out)
            self._commit(call, out)
        else:
            self._open = None
            self._text.new_segment()
            self._text.push(seg, out)
        self._tail = tail[a + len(_ASSISTANT) :]
        self._mode = "seg"
        return True
