"""Document loaders chosen by file type, and a folder walk with include / exclude globs.

Each loader returns the document's title and its sections, each with its page (PDF) and heading
path (Markdown, HTML, DOCX) so that chunks can be cited exactly; tables (PDF, DOCX) are Markdown
sections, and images and PDF pages without a text layer are read by OCR. A file that cannot be
read raises `DocumentLoadError`; the knowledge base reports it and goes on. What a loader had to
guess (an encoding, OCR) is noted and returned by `read_document`.

A folder that cannot be listed stops `iter_files` with an error: skipping it would make the
knowledge base think its files were deleted.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from glm_agent.exceptions import MissingDependencyError, UserError
from glm_agent.retrieval._load_notes import collecting, note
from glm_agent.retrieval.pdf_loader import load_pdf
from glm_agent.retrieval.records import Section
from glm_agent.retrieval.tables import markdown_table
from glm_agent.retrieval.text_decoding import decode_text

__all__ = [
    "IMAGE_SUFFIXES",
    "LOADERS",
    "DocumentLoadError",
    "FolderReadError",
    "LoadedDocument",
    "iter_files",
    "load_file",
    "read_document",
]


class DocumentLoadError(UserError):
    """A file that could not be read as a document (the reason is in the message)."""


class FolderReadError(UserError):
    """A folder under an ingested path could not be listed; nothing was changed."""


Loader = Callable[[Path], tuple[str, list[Section]]]


def _read_text(path: Path) -> str:
    decoded = decode_text(path.read_bytes())
    if decoded.note:
        note(decoded.note)
    return decoded.text


def load_text(path: Path) -> tuple[str, list[Section]]:
    """A plain text file: one section."""
    return path.stem, [Section(_read_text(path))]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def load_markdown(path: Path) -> tuple[str, list[Section]]:
    """Markdown: a section per heading, with the heading path above it (fenced code kept whole)."""
    title = ""
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(buf).strip()
        if text:
            sections.append(Section(text, heading_path=tuple(h for _, h in stack)))
        buf.clear()

    for line in _read_text(path).splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        m = None if in_fence else _MD_HEADING.match(line)
        if m is None:
            buf.append(line)
            continue
        flush()
        level, text = len(m.group(1)), m.group(2)
        title = title or (text if level == 1 else "")
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
    flush()
    return title or path.stem, sections


_HTML_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td", "th"]


def load_html(path: Path) -> tuple[str, list[Section]]:
    """HTML: text of block elements under the heading path of h1-h6 (scripts, styles dropped)."""
    try:
        from bs4 import BeautifulSoup
    except ImportError as e:
        raise MissingDependencyError("beautifulsoup4", "retrieval", "HTML documents") from e
    soup = BeautifulSoup(_read_text(path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    for el in soup.find_all(_HTML_BLOCKS):
        if el.find_parent(_HTML_BLOCKS) is not None:
            continue  # its text is part of the enclosing block's
        text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name in _HTML_BLOCKS[:6]:
            level = int(el.name[1])
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            title = title or text
            continue
        sections.append(Section(text, heading_path=tuple(h for _, h in stack)))
    if not sections:  # no block markup: fall back to the page's text
        body = soup.get_text("\n", strip=True)
        sections = [Section(body)] if body else []
    return title or path.stem, sections


MAX_XML_BYTES = 32 * 1024 * 1024
"""The most XML a DOCX (a zip) may unpack to: a few hundred kilobytes can hold gigabytes of XML,
and parsing 50 MB of it takes minutes of CPU. Embedded media are not parsed and count only
towards `MAX_UNPACKED_BYTES`."""
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
"""The most a DOCX may unpack to in all, media included."""
MAX_PACKING_RATIO = 200
"""The most a part of over a megabyte may be compressed (real documents stay under ~20:1)."""


def check_archive(path: Path) -> None:
    """Refuse a zip-based document that would unpack to too much (a zip bomb) before any parser
    opens it: from the sizes its directory declares, then from what its XML really inflates to.

    Raises:
        DocumentLoadError: The file is not a zip archive, or it would unpack past the limits.
    """
    import zipfile

    mb = 1024 * 1024

    def too_big(what: str, limit: int) -> DocumentLoadError:
        return DocumentLoadError(
            f"{path}: {what} unpacks to more than {limit // mb} MB; refused as a likely zip bomb "
            "(split the document if it is real)"
        )

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            xml = [p for p in parts if p.filename.endswith((".xml", ".rels"))]
            for info in parts:
                ratio = info.file_size / max(1, info.compress_size)
                if info.file_size > mb and ratio > MAX_PACKING_RATIO:
                    raise DocumentLoadError(
                        f"{path}: part {info.filename!r} unpacks to {ratio:.0f} times its packed "
                        f"size (at most {MAX_PACKING_RATIO}); refused as a likely zip bomb"
                    )
            if sum(p.file_size for p in parts) > MAX_UNPACKED_BYTES:
                raise too_big("the archive", MAX_UNPACKED_BYTES)
            if sum(p.file_size for p in xml) > MAX_XML_BYTES:
                raise too_big("its XML", MAX_XML_BYTES)
            # The declared sizes can lie: count what the XML really inflates to.
            real = 0
            for info in xml:
                with archive.open(info) as member:
                    while chunk := member.read(mb):
                        real += len(chunk)
                        if real > MAX_XML_BYTES:
                            raise too_big("its XML", MAX_XML_BYTES)
    except zipfile.BadZipFile as e:
        raise DocumentLoadError(f"{path}: not a DOCX file (not a zip archive: {e})") from None


def load_docx(path: Path) -> tuple[str, list[Section]]:
    """DOCX: paragraphs under the heading path of "Heading N" styles, and tables as Markdown,
    in document order. An archive that would unpack past the limits (`check_archive`) is refused."""
    check_archive(path)
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError as e:
        raise MissingDependencyError("python-docx", "retrieval", "DOCX documents") from e
    document = docx.Document(str(path))
    title = document.core_properties.title or ""
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "tbl":
            rows = [[c.text for c in row.cells] for row in Table(child, document).rows]
            if md := markdown_table(_merged(rows)):
                sections.append(Section(md, heading_path=tuple(h for _, h in stack), table=True))
            continue
        if tag != "p":
            continue
        para = Paragraph(child, document)
        text = para.text.strip()
        if not text:
            continue
        style = para.style.name if para.style is not None else ""
        m = re.match(r"Heading (\d)", style or "")
        if m or style == "Title":
            level = int(m.group(1)) if m else 0
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            title = title or text
            continue
        sections.append(Section(text, heading_path=tuple(h for _, h in stack)))
    return title or path.stem, sections


def _merged(rows: list[list[str]]) -> list[list[str]]:
    """python-docx repeats a horizontally merged cell's text in every grid column it spans."""
    out = []
    for row in rows:
        cells: list[str] = []
        for c in row:
            cells.append("" if cells and c == cells[-1] and c else c)
        out.append(cells)
    return out


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Image files read by OCR (the `ocr` extra)."""


def load_image(path: Path) -> tuple[str, list[Section]]:
    """An image (a scan, a photo) read by OCR; each frame of a multi-page TIFF is a page."""
    try:
        from PIL import Image, ImageSequence
    except ImportError as e:
        raise MissingDependencyError("pillow", "ocr", "OCR of images") from e
    from glm_agent.retrieval.ocr import ocr_text

    with Image.open(path) as image:
        frames = [f.convert("RGB") for f in ImageSequence.Iterator(image)]
    sections = []
    for n, frame in enumerate(frames, start=1):
        if text := ocr_text(frame).strip():
            sections.append(Section(text, page=n if len(frames) > 1 else None))
    if sections:
        note(f"read by OCR ({len(frames)} page{'s' if len(frames) > 1 else ''})")
    return path.stem, sections


def _record_text(record: Any) -> str:
    if isinstance(record, dict):
        return "\n".join(f"{k}: {_record_text(v)}" for k, v in record.items())
    if isinstance(record, str | int | float | bool):
        return str(record)
    return json.dumps(record, ensure_ascii=False)


def load_json(path: Path) -> tuple[str, list[Section]]:
    """JSON: a section per item of a top-level list (or one object), as `key: value` lines."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DocumentLoadError(f"{path}: invalid JSON: {e}") from e
    records = data if isinstance(data, list) else [data]
    return path.stem, [Section(_record_text(r)) for r in records if r not in (None, "", {})]


def load_jsonl(path: Path) -> tuple[str, list[Section]]:
    """JSON Lines: a section per line."""
    sections = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sections.append(Section(_record_text(json.loads(line))))
        except json.JSONDecodeError as e:
            raise DocumentLoadError(f"{path}:{n}: invalid JSON: {e}") from e
    return path.stem, sections


def load_csv(path: Path) -> tuple[str, list[Section]]:
    """CSV (or TSV): a section per row, as `column: value` lines under the header."""
    text = _read_text(path)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    return path.stem, [
        Section("\n".join(f"{k}: {v}" for k, v in row.items() if k and v)) for row in rows
    ]


LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    **dict.fromkeys(IMAGE_SUFFIXES, load_image),
    ".docx": load_docx,
    ".json": load_json,
    ".jsonl": load_jsonl,
    ".csv": load_csv,
    ".tsv": load_csv,
}
"""Loader by file suffix (lower case)."""


@dataclass(frozen=True)
class LoadedDocument:
    """A document as read from its file.

    Attributes:
        title: Its title (from the file's metadata or first heading, else the file name).
        sections: Its text, section by section.
        notes: Caveats about the reading (an encoding guessed, pages read by OCR).
    """

    title: str
    sections: list[Section]
    notes: list[str] = field(default_factory=list)


def read_document(path: str | Path) -> LoadedDocument:
    """A document read by the loader for its file type, with notes on what had to be guessed.

    Raises:
        DocumentLoadError: The type is not supported or the file cannot be read.
    """
    p = Path(path)
    loader = LOADERS.get(p.suffix.lower())
    if loader is None:
        raise DocumentLoadError(
            f"{p}: unsupported file type {p.suffix!r}; supported: {', '.join(sorted(LOADERS))}"
        )
    with collecting() as notes:
        try:
            title, sections = loader(p)
        except (DocumentLoadError, MissingDependencyError):
            raise
        except Exception as e:  # any parser's failure on a bad file is that file's problem only
            raise DocumentLoadError(
                f"{p}: cannot read {p.suffix} file: {type(e).__name__}: {e}"
            ) from e
    return LoadedDocument(title, sections, notes)


def load_file(path: str | Path) -> tuple[str, list[Section]]:
    """The title and sections of a document, read by the loader for its file type.

    Raises:
        DocumentLoadError: The type is not supported or the file cannot be read.
    """
    doc = read_document(path)
    return doc.title, doc.sections


def _walk(base: Path) -> list[Path]:
    """Every file under `base`, sorted; an unreadable folder raises rather than being skipped."""
    found: list[Path] = []

    def fail(e: OSError) -> None:
        raise FolderReadError(
            f"{e.filename}: cannot list folder: {e.strerror}; nothing was changed (fix its "
            "permissions, or leave it out with an exclude glob)"
        ) from e

    for folder, dirs, files in os.walk(base, onerror=fail):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".")]
    return sorted(found)


def iter_files(
    root: str | Path,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> Iterator[Path]:
    """The files under `root` (or `root` itself), sorted, filtered by glob patterns.

    The folder is listed completely before the first file is yielded, so that a folder that
    cannot be read fails the walk before anything is done with its files.

    Args:
        root: A file or folder.
        include: Globs matched against the path relative to `root` or the file name (default:
            every supported type).
        exclude: Globs of files to leave out (matched the same way); hidden files are always left
            out.

    Raises:
        FolderReadError: A folder under `root` cannot be listed (permissions, I/O error).
        UserError: `root` does not exist.
    """
    base = Path(root)
    if base.is_file():
        yield base
        return
    if not base.is_dir():
        raise UserError(f"{base}: no such file or folder")
    for p in _walk(base):
        rel = p.relative_to(base).as_posix()
        if not p.is_file():
            continue

        def match(globs: Sequence[str], rel: str = rel, name: str = p.name) -> bool:
            return any(fnmatch(rel, g) or fnmatch(name, g) for g in globs)

        if include is None:
            if p.suffix.lower() not in LOADERS:
                continue
        elif not match(include):
            continue
        if match(exclude):
            continue
        yield p
