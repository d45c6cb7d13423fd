"""Memento's JSONL formats, read and written losslessly.

- `memory.jsonl`         {"case", "plan", "case_label": "positive"|"negative"}: the case bank
- `dummy_memo.jsonl`     {"question", "plan", "reward": 0|1}: the bank the agent writes as it runs
- `training_data.jsonl`  {"query", "case", "case_label", "plan", "truth_label": bool}: retriever
                         training pairs, i.e. cases plus labelled impressions (case shown for query)
- `cases.jsonl`          this project's own full record of each case (every field, for backups);
                         with `embedding` (its task's vector, a list of floats) and, once its
                         plan is embedded, `plan_embedding` when exported `--with-embeddings`;
                         an import of such a file skips the encoder

The format is detected from the keys of the first record. Memento writes JSON with
`ensure_ascii=False` and default separators; so do we, which makes export byte-identical.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from memento_mcp.errors import InvalidInput
from memento_mcp.models import POSITIVE_REWARD, Case

Format = Literal["memory", "dummy_memo", "training_data", "cases"]

VectorsOf = Callable[[list[int]], tuple[np.ndarray, np.ndarray, set[int]]]
"""case ids -> their task vectors, their plan vectors, and the ids whose plan has none yet."""

FORMAT_KEYS: dict[Format, tuple[str, ...]] = {
    "memory": ("case", "plan", "case_label"),
    "dummy_memo": ("question", "plan", "reward"),
    "training_data": ("query", "case", "case_label", "plan", "truth_label"),
    "cases": ("task", "plan", "answer", "reward"),
}


@dataclass
class Record:
    """One parsed line: a case, and for training pairs the query it was shown for."""

    line: int
    task: str
    plan: str
    answer: str
    reward: float | None
    metadata: dict[str, Any]
    query: str | None = None
    query_reward: float | None = None
    embedding: np.ndarray | None = None  # (dims,) float32, from a cases file's `embedding`
    plan_embedding: np.ndarray | None = None  # (dims,) float32, its `plan_embedding`


def _loads(text: str) -> Any:
    # orjson parses a line of 384 floats about 4x faster than json: most of a 1M-case bulk load
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc


def detect_format(record: dict[str, Any]) -> Format:
    keys = set(record)
    # training_data's keys include memory's, so test the larger sets first
    for name in ("training_data", "cases", "memory", "dummy_memo"):
        if set(FORMAT_KEYS[name]) <= keys:  # type: ignore[index]
            return name  # type: ignore[return-value]
    raise InvalidInput(
        f"unrecognised record with keys {sorted(keys)}; expected one of: "
        + "; ".join(f"{name}: {', '.join(keys)}" for name, keys in FORMAT_KEYS.items())
    )


def _label_reward(label: Any) -> float:
    if label not in ("positive", "negative"):
        raise ValueError(f"case_label must be 'positive' or 'negative', not {label!r}")
    return 1.0 if label == "positive" else 0.0


def _reward(value: Any) -> float:
    reward = float(value)
    if not 0.0 <= reward <= 1.0:
        raise ValueError(f"reward must be within [0, 1], not {value!r}")
    return reward


def _text(record: dict[str, Any], key: str) -> str:
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be non-empty text")
    return value


def parse_record(fmt: Format, raw: dict[str, Any], line: int) -> Record:
    if fmt == "memory":
        return Record(line, _text(raw, "case"), _text(raw, "plan"), "",
                      _label_reward(raw["case_label"]), {"format": fmt})
    if fmt == "dummy_memo":
        return Record(line, _text(raw, "question"), _text(raw, "plan"), "",
                      _reward(raw["reward"]), {"format": fmt})
    if fmt == "training_data":
        truth = raw["truth_label"]
        if not isinstance(truth, bool):
            raise ValueError(f"truth_label must be true or false, not {truth!r}")
        return Record(line, _text(raw, "case"), _text(raw, "plan"), "",
                      _label_reward(raw["case_label"]), {"format": fmt},
                      query=_text(raw, "query"), query_reward=float(truth))
    reward = raw["reward"]
    return Record(line, _text(raw, "task"), _text(raw, "plan"), str(raw["answer"] or ""),
                  None if reward is None else _reward(reward), dict(raw.get("metadata") or {}),
                  embedding=_embedding(raw.get("embedding")),
                  plan_embedding=_embedding(raw.get("plan_embedding"), "plan_embedding"))


def _embedding(value: Any, name: str = "embedding") -> np.ndarray | None:
    if value is None:
        return None
    vector = np.asarray(value, dtype=np.float32)
    if vector.ndim != 1 or not len(vector) or not np.isfinite(vector).all():
        raise ValueError(f"{name} must be a non-empty list of finite numbers")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValueError(f"{name} must not be all zeros")
    return vector / norm  # cosine similarity is a dot product of unit vectors


def read_jsonl(path: Path) -> tuple[Format | None, list[Record], list[str]]:
    """Parse the whole file first: (format, good records, one error message per bad line)."""
    fmt: Format | None = None
    records: list[Record] = []
    errors: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                raw = _loads(text)
                if not isinstance(raw, dict):
                    raise ValueError("a line must hold one JSON object")
                fmt = fmt or detect_format(raw)
                missing = [key for key in FORMAT_KEYS[fmt] if key not in raw]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)} for the {fmt} format")
                records.append(parse_record(fmt, raw, number))
            except (ValueError, TypeError, InvalidInput) as exc:
                errors.append(f"line {number}: {exc}")
    return fmt, records, errors


EMBEDDING_DECIMALS = 7
"""Exported vector components are rounded to this many decimals: about half the text of a
float32's full repr, and cosine similarities move by less than 1e-6."""


def export_lines(
    fmt: Format,
    cases: Iterator[Case],
    pairs: Iterator[dict[str, Any]],
    lookup: dict[int, Case],
    vectors_of: VectorsOf | None = None,
) -> Iterator[str]:
    """JSON lines in Memento's layout. Cases still awaiting a reward have no label to write.

    With `vectors_of`, each `cases` line carries `embedding`, and `plan_embedding` where the
    case's plan has one.
    """
    if fmt == "cases" and vectors_of is not None:
        yield from _cases_with_embeddings(cases, vectors_of)
        return
    if fmt == "training_data":
        for pair in pairs:
            case = lookup[pair["case_id"]]
            if case.reward is None:
                continue
            yield _dump({"query": pair["query"], "case": case.task, "case_label": _label(case),
                         "plan": case.plan, "truth_label": pair["reward"] >= POSITIVE_REWARD})
        return
    for case in cases:
        if fmt == "cases":
            yield _dump(_case_record(case))
        elif case.reward is None:
            continue
        elif fmt == "memory":
            yield _dump({"case": case.task, "plan": case.plan, "case_label": _label(case)})
        else:
            reward: float | int = int(case.reward) if case.reward in (0.0, 1.0) else case.reward
            yield _dump({"question": case.task, "plan": case.plan, "reward": reward})


def _case_record(case: Case) -> dict[str, Any]:
    return {"task": case.task, "plan": case.plan, "answer": case.answer, "reward": case.reward,
            "namespace": case.namespace, "source": case.source, "metadata": case.metadata,
            "trajectory": case.trajectory, "created_at": case.created_at}


def _cases_with_embeddings(
    cases: Iterator[Case], vectors_of: VectorsOf, batch: int = 1000
) -> Iterator[str]:
    while chunk := list(itertools.islice(cases, batch)):
        tasks, plans, unembedded = vectors_of([c.case_id for c in chunk])
        tasks = np.round(tasks.astype(np.float64), EMBEDDING_DECIMALS).tolist()
        plans = np.round(plans.astype(np.float64), EMBEDDING_DECIMALS).tolist()
        for case, task, plan in zip(chunk, tasks, plans, strict=True):
            record = {**_case_record(case), "embedding": task}
            if case.case_id not in unembedded:
                record["plan_embedding"] = plan
            yield _dump(record)


def _label(case: Case) -> str:
    return "positive" if (case.reward or 0.0) >= POSITIVE_REWARD else "negative"


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)
