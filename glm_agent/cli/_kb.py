"""`glm-agent kb ...`: build and query a knowledge base from the command line.

A knowledge base is a folder (`--kb`, FAISS) or a Milvus collection (`--backend milvus --uri
http://host:19530`, or a `.db` path for Milvus Lite), whose embedding cache stays in `--kb`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from glm_agent.retrieval import IngestProgress, KnowledgeBase

__all__ = ["app"]

app = typer.Typer(help="Build and search a knowledge base.", no_args_is_help=True)

KbOption = Annotated[
    Path,
    typer.Option("--kb", help="The knowledge base folder (with Milvus: its embedding cache)."),
]
EmbedderOption = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        help="minilm (default), test, openai:MODEL@URL, or a local sentence-transformers model.",
    ),
]
BackendOption = Annotated[
    str, typer.Option("--backend", help="faiss (the --kb folder) or milvus (shared, by --uri).")
]
UriOption = Annotated[
    str | None,
    typer.Option("--uri", help="Milvus: http://host:19530, or a .db path for Milvus Lite."),
]
CollectionOption = Annotated[str, typer.Option("--collection", help="Milvus: collection name.")]


def _open(
    kb: Path, embedder: str | None, backend: str, uri: str | None, collection: str
) -> KnowledgeBase:
    from glm_agent.retrieval import KnowledgeBase

    return KnowledgeBase(kb, embedder=embedder, backend=backend, uri=uri, collection=collection)


class _Bars:
    """Two progress bars on stderr: files, and the embedding batches of the current file."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[name]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.files = self.progress.add_task("files", total=None, name="")
        self.chunks = self.progress.add_task("embedding", total=None, name="")

    def __call__(self, p: IngestProgress) -> None:
        name = Path(p.path).name
        if p.event == "start":
            self.progress.update(self.files, total=p.files_total)
        elif p.event == "file":
            self.progress.update(self.chunks, completed=0, total=None, name=name)
        elif p.event == "embedded":
            self.progress.update(
                self.chunks, completed=p.chunks_done, total=p.chunks_total, name=name
            )
        self.progress.update(self.files, completed=p.files_done, name=name)

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A file or folder of documents.")],
    kb: KbOption,
    embedder: EmbedderOption = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Glob of files to take (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Glob of files to skip (repeatable).")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant stored on every chunk.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    backend: BackendOption = "faiss",
    uri: UriOption = None,
    collection: CollectionOption = "glm_agent",
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress bars on stderr.")
    ] = True,
) -> None:
    """Ingest documents: new and changed files are indexed, deleted ones removed."""
    with _open(kb, embedder, backend, uri, collection) as base:
        options: dict[str, Any] = {
            "include": include,
            "exclude": exclude or (),
            "tags": tag or (),
            "tenant": tenant,
        }
        if progress:
            with _Bars() as bars:
                report = base.ingest(path, progress=bars, **options)
        else:
            report = base.ingest(path, **options)
    for f in report.failed:
        typer.echo(f"failed: {f.path}: {f.reason}", err=True)
    for name in report.empty:
        typer.echo(f"empty: {name}: no text to index, not added", err=True)
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(report.summary())


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question.")],
    kb: KbOption,
    k: Annotated[int, typer.Option("-k", help="How many passages.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    embedder: EmbedderOption = None,
    per_document: Annotated[
        int, typer.Option("--per-document", help="Most passages per document (0: no limit).")
    ] = 1,
    backend: BackendOption = "faiss",
    uri: UriOption = None,
    collection: CollectionOption = "glm_agent",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Search the knowledge base and print the passages with their citations."""
    with _open(kb, embedder, backend, uri, collection) as base:
        hits = base.search(query, k=k, mode=mode, per_document=per_document or None)  # type: ignore[arg-type]
    for n, h in enumerate(hits, start=1):
        if as_json:
            c = h.citation
            row = {
                "score": h.score,
                "text": h.text,
                "source": c.source,
                "title": c.title,
                "page": c.page,
                "heading_path": list(c.heading_path),
                "chunk_id": c.chunk_id,
            }
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo(f"[{n}] {h.score:.4f} {h.citation.label()}\n{h.text}\n")


@app.command()
def stats(
    kb: KbOption,
    embedder: EmbedderOption = None,
    backend: BackendOption = "faiss",
    uri: UriOption = None,
    collection: CollectionOption = "glm_agent",
) -> None:
    """Print the knowledge base's counts and settings as JSON."""
    with _open(kb, embedder, backend, uri, collection) as base:
        typer.echo(json.dumps(base.stats(), indent=2))
