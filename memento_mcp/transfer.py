"""Memento's JSONL files in and out of a bank: import (encoding only what is new, or taking
the vectors a file carries) and export, each batch one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memento_mcp import validation
from memento_mcp.casebank import Impression, NewCase, content_hash
from memento_mcp.casebank.memento_io import Format, Record, VectorsOf, export_lines, read_jsonl
from memento_mcp.errors import InvalidInput
from memento_mcp.retrieval.encoder import Encoder

if TYPE_CHECKING:
    from memento_mcp.memory import Memory


@dataclass
class ImportReport:
    format: Format | None
    read: int
    added: int
    skipped_duplicates: int
    impressions: int
    bad_lines: list[str]


def import_file(
    memory: Memory,
    path: Path,
    namespace: str | None = None,
    skip_bad: bool = False,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a Memento JSONL file; each batch is one transaction, so a crash keeps whole batches.

    Bad lines stop the import before anything is written, unless skip_bad is set. Cases that
    carry an `embedding` (a cases file exported --with-embeddings) are not encoded again, nor
    plans that carry a `plan_embedding`.
    """
    memory.bank.require_writable()  # before reading and encoding anything
    namespace = validation.namespace(namespace, memory.settings.namespace)
    fmt, records, errors = read_jsonl(path)
    for record in records:
        for name in ("task", "plan", "answer", "query"):
            value = getattr(record, name)
            if value and len(value.encode("utf-8")) > memory.settings.max_field_bytes:
                errors.append(f"line {record.line}: {name} exceeds the field size limit")
        for name, vector in (("embedding", record.embedding),
                             ("plan_embedding", record.plan_embedding)):  # fmt: skip
            if vector is not None and len(vector) != memory.encoder.dimensions:
                raise InvalidInput(
                    f"{path}, line {record.line}: {name} has {len(vector)}"
                    f" dimensions, but this bank's encoder ({memory.encoder.name}) makes"
                    f" {memory.encoder.dimensions}; nothing was imported. Export the cases from"
                    " a bank with the same encoder, or drop the embedding fields to encode them"
                    " here."
                )
    if errors and not skip_bad:
        shown = "\n".join(errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise InvalidInput(
            f"{path}: {len(errors)} bad line(s); nothing was imported (use --skip-bad to"
            f" import the rest):\n{shown}{more}"
        )
    bad = {int(message.split(":")[0].split()[1]) for message in errors}
    records = [record for record in records if record.line not in bad]
    report = ImportReport(fmt, len(records), 0, 0, 0, errors)
    if batch_size is None:  # precomputed vectors: bigger transactions; encoding: 256 texts
        batch_size = 5000 if records and records[0].embedding is not None else 256
    case_ids = _import_cases(memory, records, namespace, batch_size, report, progress)
    _import_pairs(memory, records, case_ids, namespace, report)
    memory.index.invalidate()
    return report

def _import_cases(
    memory: Memory,
    records: list[Record],
    namespace: str,
    batch_size: int,
    report: ImportReport,
    progress: Callable[[int, int], None] | None,
) -> list[int]:
    """Write the records' cases, encoding only those not stored yet; case_id per record."""
    hashes = [content_hash(r.task, r.plan, r.answer) for r in records]
    known = memory.bank.existing_cases(namespace, list(dict.fromkeys(hashes)))
    fresh = [i for i, digest in enumerate(hashes) if digest not in known]
    fresh = list({hashes[i]: i for i in reversed(fresh)}.values())[::-1]  # first of duplicates
    report.skipped_duplicates = len(records) - len(fresh)
    for start in range(0, len(fresh), batch_size):
        batch = [records[i] for i in fresh[start : start + batch_size]]
        vectors = _vectors(memory.encoder, batch)
        new = [
            NewCase(namespace, r.task, r.plan, r.answer, r.reward, "import", r.metadata)
            for r in batch
        ]
        added = [case_id for case_id, _ in
                 memory.bank.add_cases(list(zip(new, vectors, strict=True)))]  # fmt: skip
        for digest, case_id in zip(
            (hashes[i] for i in fresh[start : start + batch_size]), added, strict=True
        ):
            known[digest] = case_id
        _embed_plans(memory, batch, added)
        report.added += len(batch)
        if progress:
            progress(start + len(batch), len(fresh))
    return [known[digest] for digest in hashes]


def _embed_plans(memory: Memory, batch: list[Record], case_ids: list[int]) -> None:
    """Store the plan vectors the records carry, and embed the plans of the cases whose tasks
    were encoded here, so that a server ranks them from its first retrieval without encoding
    plans on the request path (bench/load.py: the starter bank's plans, embedded one at a time
    as cases were first weighed, cost the first minute under load about a third of its
    throughput). Cases imported with a task vector and no plan vector (a file exported
    --with-embeddings before their plans were embedded) are embedded in the background when
    first weighed (Memory._plan_vectors)."""
    records = list(zip(case_ids, batch, strict=True))
    given = {case_id: r.plan_embedding for case_id, r in records if r.plan_embedding is not None}
    todo = [(case_id, r.plan) for case_id, r in records
            if r.embedding is None and r.plan_embedding is None]  # fmt: skip
    if todo:
        vectors = memory.encoder.encode([plan for _, plan in todo])
        given.update(zip([case_id for case_id, _ in todo], vectors, strict=True))
    if given:
        memory.bank.add_plan_vectors(given)


def _vectors(encoder: Encoder, batch: list[Record]) -> np.ndarray:
    """The records' embeddings: the ones they carry, the encoder's for the rest."""
    missing = [i for i, r in enumerate(batch) if r.embedding is None]
    if not missing:
        return np.stack([r.embedding for r in batch])  # type: ignore[misc]
    encoded = encoder.encode([batch[i].task for i in missing])
    if len(missing) == len(batch):
        return encoded
    vectors = np.stack([
        r.embedding if r.embedding is not None else np.zeros(encoder.dimensions)
        for r in batch
    ]).astype(np.float32)
    vectors[missing] = encoded
    return vectors

def _import_pairs(
    memory: Memory, records: list[Record], case_ids: list[int], namespace: str, report: ImportReport
) -> None:
    """Training pairs become one labelled request per query, unless imported before."""
    groups: dict[str, list[tuple[Record, int]]] = {}
    for record, case_id in zip(records, case_ids, strict=True):
        if record.query is not None:
            groups.setdefault(record.query, []).append((record, case_id))
    request_ids = {
        query: "import-" + uuid.uuid5(uuid.NAMESPACE_URL, namespace + "\0" + query).hex
        for query in groups
    }
    done = memory.bank.known_requests(list(request_ids.values())) if groups else set()
    todo = [query for query in groups if request_ids[query] not in done]
    for start in range(0, len(todo), 256):
        queries = todo[start : start + 256]
        for query, query_vec in zip(queries, memory.encoder.encode(queries), strict=True):
            impressions = [
                Impression(case_id, rank, 0.0, 0.0, 1.0, record.query_reward)
                for rank, (record, case_id) in enumerate(groups[query], start=1)
            ]
            memory.bank.log_request(
                request_ids[query], namespace, query, query_vec, "import", impressions, "import"
            )
            report.impressions += len(impressions)

def export_file(
    memory: Memory, path: Path, fmt: Format, namespace: str | None = None, with_embeddings: bool = False
) -> int:
    if with_embeddings and fmt != "cases":
        raise InvalidInput("--with-embeddings needs the cases format (-f cases)")
    namespace = validation.namespace(namespace, memory.settings.namespace)
    cases = memory.bank.iter_cases(namespace)
    pairs = memory.bank.iter_labelled_pairs(namespace)
    lookup = {case.case_id: case for case in memory.bank.iter_cases(namespace)} if (
        fmt == "training_data"
    ) else {}
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in export_lines(fmt, cases, pairs, lookup,
                                 _vectors_of(memory) if with_embeddings else None):  # fmt: skip
            handle.write(line + "\n")
            count += 1
    return count


def _vectors_of(memory: Memory) -> VectorsOf:
    def vectors_of(case_ids: list[int]) -> tuple[np.ndarray, np.ndarray, set[int]]:
        plans, unembedded = memory.bank.plan_vectors(case_ids)
        return memory.bank.case_vectors(case_ids), plans, set(unembedded)

    return vectors_of
