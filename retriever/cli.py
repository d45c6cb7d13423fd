"""`memento-mcp retriever ...`: train, evaluate, inspect and roll back the prior model.

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
    from memento_mcp.casebank import open_bank

    return open_bank(settings.bank_location, cache_dir=settings.home / "cache")


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
    namespace: Annotated[
        str | None, typer.Option(help="Namespace to train (bank only; default: the settings')")
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
        float, typer.Option(help="Fraction of queries held out for evaluation (pairs only)")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Which query split (pairs only)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Train a prior head and report held-out metrics (split by query).

    With --pairs the checkpoint is saved under <home>/retriever/ but not served: pairs from
    another bank describe other cases. Without --pairs, plans not embedded yet are embedded
    first (a progress bar), then the head trains on the namespace's labelled impressions, is
    registered, and is promoted only if its off-policy value beats what serves (90 % interval
    above zero); old inactive checkpoints are pruned.
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
        _train_bank(settings, namespace or settings.namespace, TrainConfig(**overrides), as_json)
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


def _train_bank(settings: Any, namespace: str, config: Any, as_json: bool) -> None:
    """One run of retriever.job in this process: a progress bar while plans are embedded."""
    from rich.console import Console
    from rich.progress import Progress

    from memento_mcp.retrieval.encoder import shared_encoder
    from retriever.job import embed_plans, run

    bank = _bank(settings)
    console = Console(stderr=True)
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("embedding plans", total=None)
        embedded = embed_plans(
            bank,
            shared_encoder().encode,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    with console.status(f"training the prior of {namespace!r}"):
        result = run(bank, namespace, settings.checkpoint_dir, settings.keep_checkpoints,
                     train_config=config)  # fmt: skip
    metrics = result.pop("metrics")
    _print(result | {"plans_embedded": embedded} | metrics, as_json)


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
def status(
    namespace: Annotated[
        str | None, typer.Option(help="One namespace (default: every namespace in the bank)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What serves each namespace, its policy value, labels waiting and the last run.

    The value is the off-policy estimate against the incumbent with its 90 % interval; pruned
    counts the old inactive checkpoints deleted so far.
    """
    from retriever.online import OnlineTrainer

    settings = _settings()
    bank = _bank(settings)
    trainer = OnlineTrainer(
        bank, settings.checkpoint_dir, settings.retrain_every, settings.keep_checkpoints
    )
    if namespace is not None:
        names = [namespace]
    else:
        names = sorted(
            {row["namespace"] for row in bank.stats()["namespaces"]}
            | {v["namespace"] for v in bank.retriever_versions() if v["namespace"]}
        )
    result = {ns: trainer.status(ns) for ns in names}
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    if not result:
        typer.echo("no namespaces yet: nothing to learn from")
    for ns, entry in result.items():
        typer.echo(_describe(ns, entry))


def _describe(namespace: str, entry: dict[str, Any]) -> str:
    """A few readable lines about one namespace's retriever."""
    lines = [f"[{namespace}] serving: {entry['model'] or 'no prior (similarity order)'}"]
    if entry["fallback"]:
        lines.append(f"  {entry['fallback']}")
    if entry["value"] is not None:
        lo, hi = entry["ci"] or (float("nan"), float("nan"))
        lines.append(
            f"  value {entry['value']:.3f} vs {entry['incumbent']} {entry['incumbent_value']:.3f}"
            f" (diff {entry['diff']:+.3f}, 90% CI [{lo:+.3f}, {hi:+.3f}])"
        )
    lines.append(
        f"  labelled {entry['labelled']}, waiting {entry['labels_waiting']}"
        f" (retrain every {entry['retrain_every']}), versions {entry['versions']},"
        f" pruned {entry['pruned_checkpoints']}"
    )
    last = entry["last_run"]
    if last:
        outcome = "promoted" if last.get("promoted") else "not promoted"
        lines.append(f"  last run: {last.get('version')} {outcome}: {last.get('reason')}")
    return "\n".join(lines)


@app.command()
def rollback(
    namespace: Annotated[
        str | None, typer.Option(help="Namespace to roll back (default: the settings')")
    ] = None,
) -> None:
    """Serve the version promoted before the active one again (a second rollback undoes the first)."""
    from retriever.versions import CheckpointError
    from retriever.versions import rollback as do_rollback

    settings = _settings()
    try:
        version = do_rollback(_bank(settings), namespace or settings.namespace)
    except CheckpointError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"active retriever: {version}")


if __name__ == "__main__":
    app()
