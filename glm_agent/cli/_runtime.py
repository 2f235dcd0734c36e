"""`glm-agent runtime ...`: build a tiny random GLM, inspect a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Local GLM runtime: tiny test checkpoints, checkpoint info.", no_args_is_help=True
)


@app.command("tiny-glm")
def tiny_glm_command(
    out_dir: Path = typer.Argument(..., help="Directory to write the checkpoint to."),
    model_type: str = typer.Option("glm", "--model-type", help="glm, glm4 or glm4_moe."),
    tokenizer: Path | None = typer.Option(
        None, "--tokenizer", help="GLM-4 tokenizer.model (default: ../shared/glm copy)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights."),
) -> None:
    """Write a random-weight GLM checkpoint with GLM-4's real vocabulary (it generates noise)."""
    from glm_agent.runtime.tiny import tiny_glm

    path = tiny_glm(out_dir, model_type=model_type, tokenizer_path=tokenizer, seed=seed)
    typer.echo(f"wrote {path} (model_type={model_type}; random weights: its output is noise)")


@app.command("info")
def info_command(
    checkpoint: str = typer.Argument(..., help="Checkpoint directory or hub id."),
    device: str | None = typer.Option(None, "--device", help="cuda, cpu... (default: auto)."),
    attention: str | None = typer.Option(
        None, "--attention", help="xformers, sdpa or eager (default: auto)."
    ),
) -> None:
    """Print a checkpoint's model_type, GLM family, context budget and attention backend."""
    from glm_agent.glm import family_for_model
    from glm_agent.runtime.budget import context_budget
    from glm_agent.runtime.loading import (
        read_model_config,
        resolve_attention,
        resolve_device,
        resolve_dtype,
    )

    config = read_model_config(checkpoint)
    dev = resolve_device(device)
    dtype = resolve_dtype(None, dev)
    backend = resolve_attention(attention, dev)
    family = family_for_model(Path(checkpoint).name, config.model_type)
    budget = context_budget(config, dtype, dev)
    tiny = (
        " (tiny_glm: random weights, output is noise)"
        if getattr(config, "glm_agent_tiny", False)
        else ""
    )
    typer.echo(f"model_type: {config.model_type}{tiny}")
    typer.echo(f"family: {family}")
    typer.echo(f"device: {dev} ({str(dtype).removeprefix('torch.')})")
    typer.echo(f"attention backend: {backend}")
    typer.echo(f"kv bytes per token: {budget.kv_bytes_per_token}")
    typer.echo(f"model max context: {budget.model_max}")
    typer.echo(
        f"context budget: {budget.max_tokens} tokens ({budget.free_bytes / 2**30:.1f} GiB free)"
    )
