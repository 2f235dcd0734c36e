"""PII redaction: mainland ID-card numbers, mobile numbers, bank cards (Luhn) and e-mail addresses.

```python
redactor = Redactor(kinds=["phone", "id_card"], style="partial")
redactor.redact("call 13812345678")      # 'call 138****5678'
```

Candidates are validated before masking (ID-card checksum, Luhn), so order numbers and amounts
that merely look long are left alone. Text is normalised first (NFKC: full-width digits and
letters become ASCII) and numbers may be split by spaces, dashes, dots or middle dots, so
`１３９１２３４５６７８`, `110101 19900307 7534` and `6222.0211.0000.1234` are found too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = ["PII_KINDS", "Redactor", "id_card_valid", "luhn_valid"]

PII_KINDS: tuple[str, ...] = ("id_card", "phone", "bank_card", "email")
Style = Literal["mask", "label", "partial"]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# (?<![0-9A-Za-z]) rather than \b: Chinese text has no word boundary before digits. `_SEP`:
# what people put between groups of digits (after normalisation).
_SEP = r"[ \-.\u00b7]?"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"),
    "id_card": re.compile(rf"(?<![0-9A-Za-z])\d(?:{_SEP}\d){{16}}{_SEP}[0-9Xx](?![0-9A-Za-z])"),
    "bank_card": re.compile(rf"(?<![0-9A-Za-z])\d(?:{_SEP}\d){{12,18}}(?![0-9A-Za-z])"),
    "phone": re.compile(
        rf"(?<![0-9A-Za-z])(?:\+?86{_SEP})?1[3-9]\d(?:{_SEP}\d{{4}}){{2}}(?![0-9A-Za-z])"
    ),
}


def _normalized(text: str) -> tuple[str, list[int]]:
    """`text` in NFKC, character by character, with the original index of every character.

    Full-width digits and letters become ASCII and a full-width space a space, so one set of
    patterns finds them; the index map puts each match back on the original text.
    """
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        norm = unicodedata.normalize("NFKC", ch) if ord(ch) > 0x7F else ch
        out.append(norm)
        origin.extend([i] * len(norm))
    return "".join(out), origin


_LABELS = {
    "email": "[EMAIL]",
    "id_card": "[ID_CARD]",
    "bank_card": "[BANK_CARD]",
    "phone": "[PHONE]",
}


def id_card_valid(number: str) -> bool:
    """Whether an 18-character mainland resident ID number has a correct check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(number: str) -> bool:
    """Whether a card number (digits, spaces and dashes allowed) passes the Luhn check."""
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _valid(kind: str, text: str) -> bool:
    if kind == "id_card":
        return id_card_valid(re.sub(r"[^0-9Xx]", "", text))
    if kind == "bank_card":
        return luhn_valid(text)
    return True


def _mask(kind: str, text: str, style: Style) -> str:
    if style == "label":
        return _LABELS[kind]
    if style == "mask":
        return re.sub(r"[^\s\-@.]", "*", text)
    if kind == "email":
        user, _, domain = text.partition("@")
        return user[:1] + "***@" + domain
    digits = re.sub(r"[^0-9Xx]", "", text)
    keep_head, keep_tail = {"phone": (3, 4), "id_card": (6, 4), "bank_card": (4, 4)}[kind]
    if kind == "phone" and len(digits) > 11:  # +86 prefix
        digits = digits[-11:]
    middle = len(digits) - keep_head - keep_tail
    return digits[:keep_head] + "*" * middle + digits[-keep_tail:]


class Redactor:
    """Masks PII in text.

    Args:
        kinds: Kinds to mask, from `PII_KINDS`.
        style: `mask` (stars), `label` ([PHONE]) or `partial` (keep edge characters).
        fields: Per-field kinds (`transcript`, `log`, `export`) overriding `kinds`.
    """

    def __init__(
        self,
        kinds: Sequence[str] = PII_KINDS,
        style: Style = "partial",
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        for kind in [*kinds, *(k for ks in (fields or {}).values() for k in ks)]:
            if kind not in PII_KINDS:
                raise ValueError(f"unknown PII kind {kind!r}; kinds: {', '.join(PII_KINDS)}")
        if style not in ("mask", "label", "partial"):
            raise ValueError(f"unknown mask style {style!r}; styles: mask, label, partial")
        self.kinds = tuple(kinds)
        self.style: Style = style
        self.fields = {k: tuple(v) for k, v in (fields or {}).items()}

    def find(self, text: str, kinds: Iterable[str] | None = None) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every PII span of `text`, without overlaps, in order."""
        return [(k, s, e) for k, s, e, _ in self._find(text, kinds)]

    def _find(
        self, text: str, kinds: Iterable[str] | None = None
    ) -> list[tuple[str, int, int, str]]:
        """(kind, start, end, normalised match) on the original text."""
        wanted = set(self.kinds if kinds is None else kinds)
        norm, origin = _normalized(text)
        spans: list[tuple[str, int, int, str]] = []
        # Order matters: an ID-card number would also pass as a bank-card candidate.
        for kind in ("email", "id_card", "phone", "bank_card"):
            if kind not in wanted:
                continue
            for m in _PATTERNS[kind].finditer(norm):
                s, e = origin[m.start()], origin[m.end() - 1] + 1
                if any(s < e2 and s2 < e for _, s2, e2, _ in spans):
                    continue
                if _valid(kind, m.group()):
                    spans.append((kind, s, e, m.group()))
        return sorted(spans, key=lambda span: span[1])

    def redact(self, text: str, field: str | None = None) -> str:
        """`text` with its PII masked (with the kinds configured for `field`, if any)."""
        if not text:
            return text
        kinds = self.fields.get(field, self.kinds) if field is not None else self.kinds
        out, last = [], 0
        for kind, s, e, found in self._find(text, kinds):
            out.append(text[last:s])
            out.append(_mask(kind, found, self.style))
            last = e
        out.append(text[last:])
        return "".join(out)
