"""Bytes of a text file to text, whatever mix of encodings enterprises' files come in.

A file is decoded whole when it can be: by its byte-order mark (UTF-8, UTF-16, UTF-32), as UTF-8,
or as UTF-16 without a mark when its NUL bytes say so. Otherwise it is decoded line by line: UTF-8
where a line is UTF-8, GB18030 where a line decodes as GB18030 into Chinese, and the rest in the
legacy encoding charset-normalizer finds for those lines (cp1252 when it finds none). Nothing is
rejected whole; what was not plain UTF-8 is said in the returned note.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["DecodedText", "decode_text"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class DecodedText:
    """A decoded text file.

    Attributes:
        text: The text.
        encoding: The encoding used, or `mixed` when lines needed different ones.
        note: What was not plain UTF-8 (None when the file was UTF-8), for the ingest report.
    """

    text: str
    encoding: str
    note: str | None = None


def _utf16_without_bom(data: bytes) -> str | None:
    """`le`/`be` when NUL bytes sit at odd / even offsets of mostly-ASCII UTF-16."""
    sample = data[:4096]
    if len(sample) < 4 or sample.count(0) < len(sample) // 4:
        return None
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    if odd > 3 * max(even, 1):
        return "utf-16-le"
    if even > 3 * max(odd, 1):
        return "utf-16-be"
    return None


def _plausible_chinese(text: str) -> bool:
    """Whether a GB18030 decoding reads as Chinese rather than mojibake.

    GB18030 decodes most pairs of Latin-1 accented letters into rare ideographs ("Größe" comes
    out as "Gr鲞e"). Chinese text mostly uses the 3755 common characters of GB2312 level 1 (lead
    bytes B0-D7) and punctuation (A1-A9), and does not wedge an ideograph between two Latin
    letters; mojibake of Latin text does both the other way.
    """
    wide = [c for c in text if ord(c) > 127]
    if not wide or any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return False
    common = sum(0xA1 <= c.encode("gb18030")[0] <= 0xD7 for c in wide)
    wedged = len(_WEDGED.findall(text))
    return common >= 0.7 * len(wide) and wedged <= 0.1 * len(wide)


_WEDGED = re.compile(r"(?<=[A-Za-z])[^\x00-\x7f](?=[A-Za-z])")


# Encodings of Latin-script text that charset-normalizer cannot tell apart on a few lines: the
# Western one, cp1252, is taken for all of them when it decodes the bytes.
_LATIN = frozenset(
    [
        "cp1250",
        "cp1252",
        "cp1257",
        "cp775",
        "latin_1",
        "iso8859_1",
        "iso8859_2",
        "iso8859_15",
        "mac_latin2",
        "mac_roman",
        "mac_iceland",
        "cp437",
        "cp850",
    ]
)


def _legacy_encoding(data: bytes) -> str:
    """The encoding of bytes that are neither UTF-8 nor Chinese (cp1252 unless clearly not)."""
    try:
        data.decode("cp1252")
        western = True
    except UnicodeDecodeError:
        western = False
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # detection is a refinement: cp1252 is the usual legacy encoding
        return "cp1252"
    best = from_bytes(data).best()
    if best is None or best.encoding in ("ascii", "utf_8", "gb18030", "gbk", "gb2312"):
        return "cp1252"
    return "cp1252" if western and best.encoding in _LATIN else str(best.encoding)


def decode_text(data: bytes) -> DecodedText:
    """Decode a text file's bytes (see the module docstring for the order of attempts)."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(enc, errors="replace")
            bad = text.count("\ufffd")
            note = None if enc == "utf-8" else f"decoded as {enc.upper()} (byte-order mark)"
            if bad:
                note = f"decoded as {enc.upper()} with {bad} undecodable characters replaced"
            return DecodedText(text, enc, note)
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    if (enc16 := _utf16_without_bom(data)) is not None:
        try:
            text = data.decode(enc16)
            return DecodedText(text, enc16, f"decoded as {enc16.upper()} (no byte-order mark)")
        except UnicodeDecodeError:
            pass
    lines = data.splitlines(keepends=True)
    kinds: list[str] = []
    for line in lines:
        try:
            line.decode("utf-8")
            kinds.append("utf-8")
            continue
        except UnicodeDecodeError:
            pass
        try:
            kinds.append("gb18030" if _plausible_chinese(line.decode("gb18030")) else "")
        except UnicodeDecodeError:
            kinds.append("")
    rest = b"".join(line for line, k in zip(lines, kinds, strict=True) if not k)
    legacy = _legacy_encoding(rest) if rest else "cp1252"
    out: list[str] = []
    replaced = 0
    for line, k in zip(lines, kinds, strict=True):
        piece = line.decode(k or legacy, errors="replace")
        replaced += piece.count("\ufffd") if not k else 0
        out.append(piece)
    counts = Counter(k or legacy for k in kinds)
    used = sorted(counts, key=lambda e: -counts[e])
    parts = ", ".join(f"{counts[e]} lines as {e.upper()}" for e in used)
    note = f"not UTF-8 throughout: decoded {parts}"
    if replaced:
        note += f"; {replaced} undecodable characters replaced"
    return DecodedText("".join(out), used[0] if len(used) == 1 else "mixed", note)
