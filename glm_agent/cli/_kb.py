"""`glm-agent kb ...`: build and query a knowledge base from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="Build and search a knowledge base.", no_args_is_help=True)

KbOption = Annotated[Path, typer.Option("--kb", help="The knowledge base folder.")]
EmbedderOption = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        help="minilm (default), test, openai:MODEL@URL, or a local sentence-transformers model.",
    ),
]


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
) -> None:
    """Ingest documents: new and changed files are indexed, deleted ones removed."""
    from glm_agent.retrieval import KnowledgeBase

    with KnowledgeBase(kb, embedder=embedder, progress=True) as base:
        report = base.ingest(
            path, include=include, exclude=exclude or (), tags=tag or (), tenant=tenant
        )
    for f in report.failed:
        typer.echo(f"failed: {f.path}: {f.reason}", err=True)
    typer.echo(report.summary())


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question.")],
    kb: KbOption,
    k: Annotated[int, typer.Option("-k", help="How many passages.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    embedder: EmbedderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Search the knowledge base and print the passages with their citations."""
    from glm_agent.retrieval import KnowledgeBase

    with KnowledgeBase(kb, embedder=embedder) as base:
        hits = base.search(query, k=k, mode=mode)  # type: ignore[arg-type]
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
def stats(kb: KbOption, embedder: EmbedderOption = None) -> None:
    """Print the knowledge base's counts and settings as JSON."""
    from glm_agent.retrieval import KnowledgeBase

    with KnowledgeBase(kb, embedder=embedder) as base:
        typer.echo(json.dumps(base.stats(), indent=2))
