"""`memento-mcp retriever ...`: train, evaluate, inspect and roll back the Q-scorer.

Mounted by memento_mcp/cli.py with `app.add_typer(retriever_app, name="retriever")`; also runs
alone as `python -m retriever.cli`. torch loads inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Train, evaluate, inspect and roll back the learned case retriever.", no_args_is_help=True
)


class Mode(str, Enum):
    head = "head"
    full = "full"


def _settings() -> Any:
    from memento_mcp.settings import Settings

    return Settings()


def _bank(settings: Any) -> Any:
    from memento_mcp.casebank.store import CaseBank

    return CaseBank(settings.db_path)


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    for key, value in result.items():
        if isinstance(value, float):
            value = round(value, 4)
        typer.echo(f"{key:>28}: {value}")


@app.command()
def train(
    pairs: Annotated[
        Path | None,
        typer.Option(help="Memento training_data.jsonl; omit to train on the bank's impressions"),
    ] = None,
    mode: Annotated[
        Mode, typer.Option(help="head: frozen encoder (seconds); full: fine-tune MiniLM too")
    ] = Mode.head,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Cap on optimiser steps (full mode on a CPU wants a few hundred)"),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Rows per step (head 256, full 16 by default)")
    ] = None,
    held_out: Annotated[
        float, typer.Option(help="Fraction of queries held out for evaluation")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Which query split (pairs only)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Train a Q-scorer and report held-out metrics (split by query).

    With --pairs the checkpoint is saved under <home>/retriever/ but not served: pairs from
    another bank describe other cases. Without --pairs the head trains on this bank's labelled
    impressions, is registered as a version, and is promoted only if it is no worse than the
    active version on the same held-out requests.
    """
    from retriever.train import TrainConfig

    settings = _settings()
    overrides: dict[str, Any] = {"max_steps": max_steps} if max_steps else {}
    if batch_size:
        overrides["batch_size"] = batch_size
    if pairs is None:
        if mode is Mode.full:
            raise typer.BadParameter(
                "--mode full needs --pairs: bank impressions carry vectors, not text"
            )
        from retriever.online import retrain

        bank = _bank(settings)
        config = TrainConfig(**overrides)
        result = retrain(
            bank,
            settings.checkpoint_dir,
            bank.training_set(),
            train_config=config,
            held_out_fraction=held_out,
        )
        _print(
            {
                "version": result["version"],
                "promoted": result["promoted"],
                "reason": result["reason"],
                **result["metrics"],
            },
            as_json,
        )
        return

    from retriever.jobs import cached_encoder, full_on_pairs, head_on_pairs

    encode = cached_encoder(settings.home / "cache")
    if mode is Mode.head:
        config = TrainConfig(**overrides)
        result = head_on_pairs(
            pairs,
            encode,
            checkpoint_dir=settings.checkpoint_dir,
            train_config=config,
            seeds=(seed,),
            fraction=held_out,
        )
    else:
        config = TrainConfig(
            mode="full",
            max_steps=max_steps or 300,
            batch_size=batch_size or 16,
            lr=1e-3,
            eval_interval=25,
            warmup_steps=20,
        )
        log = (lambda msg: typer.echo(msg, err=True)) if as_json else typer.echo
        result = full_on_pairs(
            pairs,
            encode,
            checkpoint_dir=settings.checkpoint_dir,
            train_config=config,
            fraction=held_out,
            seed=seed,
            log=log,
        )
    _print(result, as_json)


@app.command("eval")
def eval_(
    pairs: Annotated[
        Path, typer.Option(help="Memento-format pairs: query, case, case_label, truth_label")
    ],
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A saved checkpoint; omit to train a head on the file's training queries"
        ),
    ] = None,
    splits: Annotated[
        int, typer.Option(help="Average over this many query splits (no --checkpoint)")
    ] = 1,
    held_out: Annotated[float, typer.Option(help="Fraction of queries held out")] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Held-out AUC beside cosine's, NDCG@4 and precision@4 where a query's cases differ in outcome."""
    from retriever.jobs import cached_encoder, evaluate_checkpoint, head_on_pairs

    settings = _settings()
    encode = cached_encoder(settings.home / "cache")
    if checkpoint is not None:
        result = evaluate_checkpoint(checkpoint, pairs, encode, held_out)
    else:
        result = head_on_pairs(pairs, encode, seeds=tuple(range(splits)), fraction=held_out)
    _print(result, as_json)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Which version serves (or why cosine does), its metrics, and how many labels wait."""
    from retriever.online import OnlineTrainer

    settings = _settings()
    trainer = OnlineTrainer(_bank(settings), settings.checkpoint_dir, settings.retrain_every)
    result = trainer.status()
    result["versions"] = [
        {k: v for k, v in row.items() if k != "metrics"} | {"auc": row["metrics"].get("auc")}
        for row in trainer.bank.retriever_versions()
    ]
    _print(result, as_json)


@app.command()
def rollback() -> None:
    """Serve the version promoted before the active one again (a second rollback undoes the first)."""
    from retriever.checkpoint import CheckpointError
    from retriever.checkpoint import rollback as do_rollback

    try:
        version = do_rollback(_bank(_settings()))
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"active retriever: {version}")


if __name__ == "__main__":
    app()
