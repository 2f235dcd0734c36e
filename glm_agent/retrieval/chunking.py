"""Token-aware chunking with overlap that keeps headings, paragraphs and sentences whole.

Sentences end at Chinese 。！？； (and their full-width kin) and at English `.`, `!`, `?`, `;`
followed by a space. A chunk never spans two headings or two pages (citations stay exact), packs
whole sentences up to `chunk_size` tokens, and starts with the last sentences of the previous chunk
up to `overlap` tokens. A sentence longer than a chunk is cut at word (or CJK character) edges.
A table (a Markdown table section) is kept whole when it fits a chunk, and otherwise cut between
rows, each piece starting with the table's header row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from glm_agent.exceptions import UserError
from glm_agent.retrieval.records import Chunk, Section
from glm_agent.retrieval.tables import split_markdown_table

__all__ = ["TokenCounter", "chunk_sections", "estimate_tokens", "split_sentences"]

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text (e.g. a tokenizer's `len(encode(text))`)."""

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_RE = re.compile(f"[{_CJK}]")
_WORD_RE = re.compile(f"[^\\s{_CJK}]+")
# A sentence ends after CJK terminal punctuation (closing quotes kept with it), or after English
# terminal punctuation followed by whitespace.
_SENT_END_RE = re.compile(r"(?<=[。！？；!?;])[”’」』）)]*|(?<=[.!?;])[\"')\]]*(?=\s)")
_PIECE_RE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+\\s*|\\s+")


def estimate_tokens(text: str) -> int:
    """A fast token estimate: 1 per CJK character, ~1.3 per other word (BPE averages)."""
    return len(_CJK_RE.findall(text)) + math.ceil(1.3 * len(_WORD_RE.findall(text)))


def split_sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, Chinese or English; the pieces join back to it."""
    out: list[str] = []
    start = 0
    for m in _SENT_END_RE.finditer(text):
        end = m.end()
        if end > start:
            out.append(text[start:end])
            start = end
    if start < len(text):
        out.append(text[start:])
    return [s for s in out if s.strip()]


def _hard_split(sentence: str, chunk_size: int, count: TokenCounter) -> list[str]:
    """A sentence over `chunk_size` tokens, cut at word / CJK-character edges."""
    parts: list[str] = []
    cur = ""
    for piece in _PIECE_RE.findall(sentence):
        if cur and count(cur + piece) > chunk_size:
            parts.append(cur)
            cur = piece.lstrip()
        else:
            cur += piece
    if cur.strip():
        parts.append(cur)
    return parts


def _units(text: str, chunk_size: int, count: TokenCounter) -> list[tuple[str, int, bool]]:
    """(sentence, tokens, starts_paragraph) for the text's paragraphs."""
    units: list[tuple[str, int, bool]] = []
    for para in re.split(r"\n\s*\n", text):
        first = True
        for sent in split_sentences(para.strip()):
            for piece in (
                _hard_split(sent, chunk_size, count) if count(sent) > chunk_size else [sent]
            ):
                units.append((piece.strip(), count(piece), first))
                first = False
    return units


def _join(units: Sequence[tuple[str, int, bool]]) -> str:
    text = ""
    for s, _, new_para in units:
        if not text:
            text = s
        elif new_para:
            text += "\n\n" + s
        else:
            # CJK sentences join without a space; English ones with one
            text += s if _CJK_RE.match(s[:1]) and _CJK_RE.search(text[-2:]) else " " + s
    return text


def chunk_sections(
    sections: Iterable[Section],
    *,
    source: str,
    title: str,
    chunk_size: int = 256,
    overlap: int = 32,
    count_tokens: TokenCounter | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[Chunk]:
    """Cut a document's sections into chunks of at most `chunk_size` tokens.

    Args:
        sections: The document as a loader read it.
        source: The document's path or id (kept on every chunk for citations).
        title: The document's title.
        chunk_size: Most tokens in a chunk (as `count_tokens` counts them).
        overlap: Tokens of trailing sentences repeated at the start of the next chunk.
        count_tokens: Token counter; default `estimate_tokens`.
        metadata: Filterable fields copied onto every chunk.

    Returns:
        The chunks, numbered from 0 in document order.
    """
    if chunk_size < 8 or not 0 <= overlap < chunk_size:
        raise UserError(
            f"need chunk_size >= 8 and 0 <= overlap < chunk_size, got {chunk_size}/{overlap}"
        )
    count = count_tokens or estimate_tokens
    groups: list[tuple[tuple[int | None, tuple[str, ...]], list[Section]]] = []
    for sec in sections:
        key = (sec.page, tuple(sec.heading_path))
        if groups and groups[-1][0] == key:
            groups[-1][1].append(sec)
        else:
            groups.append((key, [sec]))

    chunks: list[Chunk] = []
    for (page, headings), secs in groups:
        units: list[tuple[str, int, bool]] = []
        for sec in secs:
            if not sec.text.strip():
                continue
            if sec.table:
                pieces = split_markdown_table(sec.text.strip(), chunk_size, count)
                units += [(piece, count(piece), True) for piece in pieces]
            else:
                units += _units(sec.text, chunk_size, count)
        cur: list[tuple[str, int, bool]] = []
        fresh = 0  # units in `cur` not already emitted in a previous chunk
        for unit in units:
            if cur and sum(u[1] for u in cur) + unit[1] > chunk_size:
                chunks.append(_chunk(cur, source, title, len(chunks), page, headings, metadata))
                tail: list[tuple[str, int, bool]] = []
                for u in reversed(cur):
                    if sum(t[1] for t in tail) + u[1] > overlap:
                        break
                    tail.insert(0, u)
                while tail and sum(t[1] for t in tail) + unit[1] > chunk_size:
                    tail.pop(0)
                cur, fresh = tail, 0
            cur.append(unit)
            fresh += 1
        if cur and fresh:
            chunks.append(_chunk(cur, source, title, len(chunks), page, headings, metadata))
    return chunks


def _chunk(
    units: Sequence[tuple[str, int, bool]],
    source: str,
    title: str,
    position: int,
    page: int | None,
    headings: tuple[str, ...],
    metadata: dict[str, Any] | None,
) -> Chunk:
    return Chunk(
        text=_join(units),
        source=source,
        title=title,
        position=position,
        page=page,
        heading_path=headings,
        metadata=dict(metadata or {}),
    )
