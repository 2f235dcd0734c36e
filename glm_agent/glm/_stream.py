"""Streaming parser: decoded text deltas in, content / reasoning / tool-call events out.

Guarantees (tested over every split of short outputs and random splits of long ones):

1. `result` (after `finish()`) equals `parse()` of the whole text, except for call ids, which
   are the ids announced in the events.
2. Text is emitted only once it is known to be content (or reasoning): a partial tag, trailing
   whitespace (content is stripped), possible trailing stop markers, a glm4 first line that may
   still be a tool name, and a call being read are held back until they resolve. So the
   `TextDelta`s concatenated equal `result.content` and the `ReasoningDelta`s `result.reasoning`.
3. `ToolCallEnd.call` is exactly `result.tool_calls[index]`; the `ToolCallArgsDelta`s of a call
   concatenated equal its `arguments` (one delta per complete argument for GLM-4.5+, one for
   the whole object for glm4, whose JSON is only known valid at the end of its segment).
4. Each delta costs time linear in its length (no rescans of what was read): a whole output
   costs O(length), also for long values full of `<`.

Three exceptions to 2 and 3, all flagged by `consistent` being False (`result` stays right):
the spec's late reasoning rule (an output of glm45 / glm47 / GLM-5.x with thinking off /
glm4-0414 that does not open with `<think>` is streamed as content, but a later `</think>` makes
everything before it reasoning, README §5), a repeated argument key in one GLM-4.5+ call (the
last value wins in `arguments`, after the first was already streamed), and a call found damaged
after some of its arguments were streamed (its `arguments` are then its raw text). Waiting for
the end of the output instead would stop streaming for every thinking-off answer.

A `ToolCallStart` is sent as soon as a registered tool name opens a call. If the call never
completes (output cut off, glm4 JSON invalid), it gets no `ToolCallEnd`, its text becomes
content, and the next call reuses its index with a new id: consumers commit on `ToolCallEnd`.
A glm4 call ends with its segment; GLM-4.5+ calls end with the output (`finish()`), because a
tag found after them could still show that a value held markup and a call ended early.
"""

from __future__ import annotations

from collections.abc import Sequence
from json import dumps as _dumps
from typing import TYPE_CHECKING

from glm_agent.glm._channel import (
    Channel,
    hold_from,
    reasoning_event,
    text_event,
    without_partial_tag,
)
from glm_agent.glm._facts import STOP_MARKERS
from glm_agent.glm._parse import ANSWER_TAGS, ParsedCall, Toolbox, glm4_call
from glm_agent.glm._typing import clean_text
from glm_agent.glm._xml_scan import CALL, END_CALL, GAP_TAGS, KEY, BlockScanner, is_debris
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
_NAME_ENDS = (KEY, END_CALL)
_PLAIN_MODES = frozenset(("content", "seg_text"))
_XML_FAMILIES = frozenset(("glm45", "glm47", "glm5", "glm52", "glm53"))
_NAME_CHECK = 4096  # a name region longer than this is not a tool name (a cap on rechecking)


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
        self._xml = fam in _XML_FAMILIES
        self._answer = fam == "glm41v"
        self._content_tags: tuple[str, ...] = (
            (CALL,) if self._xml else ANSWER_TAGS if self._answer else ()
        )
        self._forced_reasoning = self._xml and fmt.opens_thinking(enable_thinking)
        self._mode = "content" if fam == "chatglm3" else ("start" if fam != "glm4" else "seg")
        self._after_reasoning = "seg" if fam in ("glm4", "glm4-0414") else "content"
        self._committed: list[tuple[str, ParsedCall]] = []
        self._open: tuple[str, str] | None = None  # (id, name) of a started call
        self._open_args: list[str] = []
        self._keys: set[str] = set()
        self._scanner: BlockScanner | None = None
        self._block_parts: list[str] = []
        # XML calls read to their end, committed when the output ends: (id, name, args sent).
        self._held: list[tuple[str, str, str]] = []
        self._gap_parts: list[str] = []
        self._gap_carry = ""
        self._seg_parts: list[str] = []
        self._seg_carry = ""
        self._done = False
        self.consistent = True
        """False when a late `</think>`, a repeated argument key or a call found damaged after
        streaming its first arguments made events disagree with `result`."""
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
            delta = clean_text(delta)
            self._chunks.append(delta)
            mode = self._mode
            if mode == "block":
                self._feed_block(delta, out)
            elif mode == "after_call":
                self._feed_after_call(delta, out)
            elif mode == "hold":
                return out
            elif mode == "seg_call":
                self._feed_seg_call(delta, out)
            elif (
                "<" not in delta
                and not self._tail
                and (mode in _PLAIN_MODES or mode == "reasoning")
            ):  # fast path: no tag can start or end in this delta
                (self._reason if mode == "reasoning" else self._text).push(delta, out)
                return out
            else:
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
        # Calls started and not committed (XML calls are committed here, see `_held`).
        announced = list(self._held)
        if self._open is not None:
            announced.append((self._open[0], self._open[1], "".join(self._open_args)))
        done = len(self._committed)
        for i, call in enumerate(parts.calls):
            if i < done and self._committed[i][1] == call:
                ids.append(self._committed[i][0])
                continue
            args = call.arguments()
            j = i - done
            if i >= done and j < len(announced) and announced[j][1] == call.name:
                cid, _, sent = announced[j]
                if not args.startswith(sent):
                    self.consistent = False
                    sent = ""
            else:
                if i < done or j < len(announced):
                    self.consistent = False
                cid, sent = new_call_id(), ""
                out.append(ToolCallStart(index=i, id=cid, name=call.name))
            if args[len(sent) :]:
                out.append(ToolCallArgsDelta(index=i, id=cid, delta=args[len(sent) :]))
            out.append(self._end(i, cid, call))
            ids.append(cid)
        if len(parts.calls) < done + len(self._held):
            self.consistent = False
        self._open = None
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

    def _index(self) -> int:
        return len(self._committed) + len(self._held)

    def _start_call(self, name: str, out: list[ModelStreamEvent]) -> None:
        cid = new_call_id()
        self._open = (cid, name)
        self._open_args = []
        self._keys = set()
        out.append(ToolCallStart(index=self._index(), id=cid, name=name))

    def _args_delta(self, piece: str, out: list[ModelStreamEvent]) -> None:
        assert self._open is not None
        self._open_args.append(piece)
        out.append(ToolCallArgsDelta(index=self._index(), id=self._open[0], delta=piece))

    def _commit(self, call: ParsedCall, out: list[ModelStreamEvent]) -> None:
        assert self._open is not None
        cid = self._open[0]
        out.append(self._end(self._index(), cid, call))
        self._committed.append((cid, call))
        self._open = None

    # --- the state machine ------------------------------------------------------------------

    def _advance(self, out: list[ModelStreamEvent]) -> None:
        while self._tail:
            mode = self._mode
            if mode == "content":
                progressed = self._content(out)
            elif mode == "bad_block":
                progressed = self._bad_block(out)
            elif mode == "seg":
                progressed = self._seg_start(out)
            elif mode == "seg_text":
                progressed = self._seg_text(out)
            elif mode == "reasoning":
                progressed = self._reasoning(out)
            elif mode == "start":
                progressed = self._start()
            elif mode == "hold":
                return
            else:  # block / after_call / seg_call take their text in `feed`
                tail, self._tail = self._tail, ""
                if mode == "block":
                    self._feed_block(tail, out)
                elif mode == "after_call":
                    self._feed_after_call(tail, out)
                else:
                    self._feed_seg_call(tail, out)
                progressed = True
            if not progressed:
                return

    def _start(self) -> bool:
        s = self._tail.lstrip()
        if not s or (_THINK.startswith(s) and s != _THINK):
            return False
        if s.startswith(_THINK):  # opened here, or re-opened after a prompt that opened it
            self._tail = s[len(_THINK) :]
            self._mode = "reasoning"
        else:
            self._mode = "reasoning" if self._forced_reasoning else self._after_reasoning
        return True

    def _reasoning(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        e = tail.find(_END_THINK)
        if e != -1:
            self._reason.push(tail[:e], out)
            self._tail = tail[e + len(_END_THINK) :]
            self._mode = self._after_reasoning
            return True
        j = hold_from(tail, (_END_THINK,))
        self._reason.push(tail[:j], out)
        self._tail = tail[j:]
        return False

    # content (XML calls, GLM-4.1V answer tags) -------------------------------------------------

    def _content(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        if self._xml:
            b = tail.find(CALL)
            if b != -1:
                self._text.push(tail[:b], out)
                self._tail = ""
                self._scanner = BlockScanner(self._box.names, self._box.typer)
                self._block_parts = []
                self._mode = "block"
                self._feed_block(tail[b + len(CALL) :], out)
                return True
        elif self._answer:
            b = min((i for i in (tail.find(t) for t in ANSWER_TAGS) if i != -1), default=-1)
            if b != -1:  # GLM-4.1V's <answer> / </answer> are dropped from the content
                self._text.push(tail[:b], out)
                self._tail = tail[tail.index(">", b) + 1 :]
                return True
        j = hold_from(tail, self._content_tags)
        if j:
            self._text.push(tail[:j], out)
            self._tail = tail[j:]
        return False

    def _bad_block(self, out: list[ModelStreamEvent]) -> bool:
        tail = self._tail
        e = tail.find(END_CALL)
        if e != -1:
            self._text.push(tail[: e + len(END_CALL)], out)
            self._tail = tail[e + len(END_CALL) :]
            self._mode = "content"
            return True
        j = hold_from(tail, (END_CALL,))
        self._text.push(tail[:j], out)
        self._tail = tail[j:]
        return False

    def _feed_block(self, delta: str, out: list[ModelStreamEvent]) -> None:
        """Read a `<tool_call>` block: its name, its arguments as each is confirmed, its end."""
        sc = self._scanner
        assert sc is not None
        self._block_parts.append(delta)
        j = sc.feed(delta)
        if self._held:  # a block whose name is debris: some value held markup (`is_debris`)
            if sc.state == "name":
                debris = "<" in without_partial_tag(sc.name_so_far(), _NAME_ENDS)
            else:
                debris = not sc.name and is_debris(sc.region)
            if debris:
                self._mode = "hold"  # the end of the output decides
                return
        if sc.name and self._open is None:
            self._start_call(sc.name, out)
        elif sc.state == "name" and not self._may_be_name(sc):
            # Not a tool name: the block is text, streamed as it comes (README §5).
            self._text.push(CALL, out)
            self._mode, self._tail, self._scanner = "bad_block", "".join(self._block_parts), None
            return
        for key, value in sc.pairs:
            if key in self._keys:
                self.consistent = False  # a repeated key: the last value wins
            self._keys.add(key)
            frag = _dumps(key, ensure_ascii=False) + ": " + _dumps(value, ensure_ascii=False)
            self._args_delta(("{" if not self._open_args else ", ") + frag, out)
        sc.pairs.clear()
        if j is None:
            return
        block = "".join(self._block_parts)
        rest = delta[j:]
        block = block[: len(block) - len(rest)]
        self._scanner = None
        if sc.outcome == "invalid":
            self._text.push(CALL + block, out)
            self._mode, self._tail = "content", rest
            return
        if sc.outcome == "damaged":
            call = ParsedCall(sc.name, {}, block[sc.name_end : -len(END_CALL)])
            if self._open_args:
                self.consistent = False
            else:
                self._args_delta(call.arguments(), out)
        else:
            call = ParsedCall(sc.name, sc.args)
            self._args_delta("}" if self._open_args else "{}", out)
        # Committed at the end of the output: a stray tag after it would mean a value held
        # markup and some call ended early (`_parse.parse_xml`).
        assert self._open is not None
        self._held.append((self._open[0], sc.name, "".join(self._open_args)))
        self._open = None
        self._mode, self._gap_parts, self._gap_carry = "after_call", [], ""
        self._feed_after_call(rest, out)

    def _feed_after_call(self, delta: str, out: list[ModelStreamEvent]) -> None:
        """Between calls: text, unless a tag that belongs in a block shows up (`has_stray`)."""
        s = self._gap_carry + delta
        b = s.find(CALL)
        stop = b if b != -1 else len(s)
        if any(-1 < s.find(tag, 0, stop + len(tag) - 1) < stop for tag in GAP_TAGS):
            self._mode = "hold"  # some call ended early: the end of the output decides
            return
        if b == -1:
            cut = max(0, len(s) - len(END_CALL) + 1)
            self._gap_parts.append(s[:cut])
            self._gap_carry = s[cut:]
            return
        self._text.push("".join(self._gap_parts) + s[:b], out)
        self._scanner = BlockScanner(self._box.names, self._box.typer)
        self._block_parts = []
        self._mode = "block"
        self._feed_block(s[b + len(CALL) :], out)

    def _may_be_name(self, sc: BlockScanner) -> bool:
        region = sc.name_so_far()
        if len(region) > _NAME_CHECK:
            return False
        return self._box.could_be_name(without_partial_tag(region, _NAME_ENDS).lstrip())

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
            self._seg_parts, self._seg_carry = [], ""
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

    def _feed_seg_call(self, delta: str, out: list[ModelStreamEvent]) -> None:
        """A glm4 call segment runs to the next `<|assistant|>` (or the end of the output)."""
        s = self._seg_carry + delta
        a = s.find(_ASSISTANT)
        if a == -1:
            cut = max(0, len(s) - len(_ASSISTANT) + 1)
            self._seg_parts.append(s[:cut])
            self._seg_carry = s[cut:]
            return
        self._seg_parts.append(s[:a])
        seg = "".join(self._seg_parts).strip()
        self._seg_parts, self._seg_carry = [], ""
        call = glm4_call(seg, self._box)
        if call is not None:
            self._args_delta(call.arguments(), out)
            self._commit(call, out)
        else:
            self._open = None
            self._text.new_segment()
            self._text.push(seg, out)
        self._tail = s[a + len(_ASSISTANT) :]
        self._mode = "seg"
