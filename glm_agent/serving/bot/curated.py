"""Curated answers: approved question → answer pairs matched by character n-gram TF-IDF cosine.

Matching works the same for Chinese (no spaces between words) and English: text is normalised
(NFKC, lower case, punctuation dropped), then split into character 1- to 3-grams for CJK runs and
into words plus character trigrams for Latin runs.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["CuratedAnswer", "CuratedMatch", "CuratedMatcher", "normalize_text", "text_features"]

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
# Politeness that carries no meaning for matching ("请问运费怎么算" is "运费怎么算").
_FILLER = re.compile(
    r"请问一下|请问|麻烦问一下|我想问一下|我想问|想问下|我想知道|你好|您好|谢谢|"
    r"\b(?:please|hi|hello|hey|thanks|thank you|excuse me)\b"
)


def normalize_text(text: str) -> str:
    """NFKC, lower case, punctuation and politeness removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _FILLER.sub(" ", _PUNCT.sub(" ", text))
    return " ".join(text.split())


def text_features(text: str) -> Counter[str]:
    """Counts of the n-gram features of `text` (after `normalize_text`)."""
    norm = normalize_text(text)
    feats: Counter[str] = Counter()
    for run in _CJK.findall(norm):
        for n in (1, 2, 3):
            feats.update(run[i : i + n] for i in range(len(run) - n + 1))
    for word in _WORD.findall(norm):
        feats["w:" + word] += 1
        padded = f" {word} "
        feats.update("c:" + padded[i : i + 3] for i in range(len(padded) - 2))
    return feats


@dataclass
class CuratedAnswer:
    """An approved answer."""

    id: int
    """Its id."""
    question: str
    """The canonical question."""
    answer: str
    """The answer given verbatim."""
    variants: list[str] = field(default_factory=list)
    """Other phrasings of the question (any language)."""


@dataclass
class CuratedMatch:
    """The best curated answer for a message and its similarity."""

    answer: CuratedAnswer
    """The matched answer."""
    score: float
    """Cosine similarity in [0, 1]."""
    matched: str
    """The question or variant that matched."""


class CuratedMatcher:
    """Finds the curated answer whose question (or a variant) is closest to a message."""

    def __init__(self, answers: Sequence[CuratedAnswer] = ()) -> None:
        self._entries: list[tuple[CuratedAnswer, str, dict[str, float]]] = []
        self._idf: dict[str, float] = {}
        self.set(answers)

    def set(self, answers: Sequence[CuratedAnswer]) -> None:
        """Replace the answers matched against."""
        texts = [(a, q) for a in answers for q in [a.question, *a.variants] if q.strip()]
        feats = [text_features(q) for _, q in texts]
        df: Counter[str] = Counter()
        for f in feats:
            df.update(f.keys())
        n = len(texts)
        self._idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        self._entries = [(a, q, self._vector(f)) for (a, q), f in zip(texts, feats, strict=True)]

    def _vector(self, feats: Counter[str]) -> dict[str, float]:
        # Unknown features get the largest idf: words no curated question has make a match less
        # likely, which is what keeps "cancel my order" away from "cancel my subscription".
        default = math.log(1 + len(self._entries) + 1) + 1.0
        vec = {t: (1 + math.log(c)) * self._idf.get(t, default) for t, c in feats.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def match(self, text: str) -> CuratedMatch | None:
        """The closest answer, or None when there are no answers."""
        if not self._entries:
            return None
        q = self._vector(text_features(text))
        best: CuratedMatch | None = None
        for answer, question, vec in self._entries:
            small, large = (q, vec) if len(q) < len(vec) else (vec, q)
            score = sum(v * large.get(t, 0.0) for t, v in small.items())
            if best is None or score > best.score:
                best = CuratedMatch(answer, score, question)
        return best
