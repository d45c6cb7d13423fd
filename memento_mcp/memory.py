"""Memory: the case bank, the encoder, the index and the Q-scorer working as one.

Every MCP tool and CLI command that touches cases goes through this class, so the server, the
CLI, the agent loop and the tests all reach the same code.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from memento_mcp.casebank import CaseBank, Impression, NewCase, content_hash
from memento_mcp.casebank.memento_io import Format, Record, export_lines, read_jsonl
from memento_mcp.errors import InvalidInput
from memento_mcp.models import (
    POSITIVE_REWARD,
    BankStats,
    Case,
    CaseHit,
    OutcomeReceipt,
    RetrieveResult,
)
from memento_mcp.retrieval.encoder import Encoder, shared_encoder
from memento_mcp.retrieval.index import VectorIndex
from memento_mcp.settings import Settings

from retriever.contract import PriorModel
from retriever.policy import Selection, contextual_evidence, select

if TYPE_CHECKING:
    from retriever.online import OnlineTrainer

LEXICAL_WEIGHT = 0.15
"""Share of a candidate's relevance that comes from FTS5 matches on the query's rare words."""


class Learner(Protocol):
    """The learned retriever as Memory sees it (retriever.online.OnlineTrainer)."""

    def model(self, namespace: str) -> PriorModel | None: ...

    def notify_labelled(self, namespace: str, n: int) -> None: ...


class LazyLearner:
    """retriever.online, imported on the first retrieval rather than at start-up."""

    def __init__(self, bank: CaseBank, settings: Settings) -> None:
        self.bank = bank
        self.settings = settings

    @functools.cached_property
    def trainer(self) -> OnlineTrainer:
        from retriever.online import OnlineTrainer

        return OnlineTrainer(
            self.bank,
            self.settings.checkpoint_dir,
            self.settings.retrain_every,
            keep_checkpoints=self.settings.keep_checkpoints,
        )

    def model(self, namespace: str) -> PriorModel | None:
        return self.trainer.model(namespace)

    def notify_labelled(self, namespace: str, n: int) -> None:
        self.trainer.notify_labelled(namespace, n)


@dataclass
class ImportReport:
    format: Format | None
    read: int
    added: int
    skipped_duplicates: int
    impressions: int
    bad_lines: list[str]


class Memory:
    def __init__(
        self,
        bank: CaseBank,
        settings: Settings,
        encoder: Encoder | None = None,
        learner: Learner | None = None,
    ) -> None:
        self.bank = bank
        self.settings = settings
        self.encoder = encoder or shared_encoder()
        self.index = VectorIndex(
            bank, self.encoder.dimensions, ann_min_cases=settings.ann_min_cases
        )
        self.learner = learner
        self._rng = np.random.default_rng()

    # -- validation ----------------------------------------------------------------------------

    def _text(self, name: str, value: str | None, required: bool = True) -> str:
        if value is None or not value.strip():
            if required:
                raise InvalidInput(f"{name} must be non-empty text")
            return value or ""
        size = len(value.encode("utf-8"))
        if size > self.settings.max_field_bytes:
            raise InvalidInput(
                f"{name} is {size} bytes; the limit is {self.settings.max_field_bytes} bytes"
                " per field: shorten it or store the long part elsewhere and reference it"
            )
        return value

    def _namespace(self, namespace: str | None) -> str:
        namespace = namespace or self.settings.namespace
        if len(namespace) > 128:
            raise InvalidInput("namespace must be at most 128 characters")
        return namespace

    @staticmethod
    def _reward(reward: float | None, success: bool | None) -> float:
        if reward is None and success is None:
            raise InvalidInput("give the outcome as reward (0..1) or success (true/false)")
        if reward is not None and success is not None and reward != float(success):
            raise InvalidInput("reward and success disagree; give one of them")
        value = float(success) if reward is None else float(reward)
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise InvalidInput(f"reward must be within [0, 1], got {reward}")
        return value

    # -- retrieval -----------------------------------------------------------------------------

    def retrieve(
        self,
        query: str,
        k: int = 4,
        namespace: str | None = None,
        min_score: float | None = None,
        source: str = "retrieve_cases",
    ) -> RetrieveResult:
        """Dense + lexical candidates → ranked by what their outcomes say → impressions logged."""
        query = self._text("query", query)
        namespace = self._namespace(namespace)
        if not 1 <= k <= 50:
            raise InvalidInput(f"k must be between 1 and 50, got {k}")
        query_vec = self.encoder.encode_one(query)
        n = self.settings.candidates
        dense_ids, _ = self.index.search(namespace, query_vec, n)
        lexical = dict(self.bank.lexical_search(namespace, query, n))
        ids = list(dict.fromkeys([*dense_ids.tolist(), *lexical]))
        cases = self.bank.cases_by_id(ids)
        ids = [case_id for case_id in ids if case_id in cases and cases[case_id].reward is not None]
        vectors = self.bank.case_vectors(ids) if ids else np.zeros((0, len(query_vec)))
        similarity = vectors @ query_vec
        best = max(lexical.values(), default=0.0) or 1.0
        matched = np.array([lexical.get(case_id, 0.0) / best for case_id in ids])
        closeness = (1 - LEXICAL_WEIGHT) * np.clip(similarity, 0, 1) + LEXICAL_WEIGHT * matched
        selection, scorer = self._rank(namespace, ids, query_vec, vectors, closeness, k)

        picks = list(zip(selection.order, selection.propensities, strict=True))
        scores = selection.scores
        abstain_reason = None
        if picks and float(scores.max()) < self.settings.abstain_below:
            abstain_reason = (
                f"no stored case is likely to help (best estimate {float(scores.max()):.3f},"
                f" threshold {self.settings.abstain_below}); work on the task without one"
            )
            picks = []
        if min_score is not None:
            picks = [(i, p) for i, p in picks if scores[i] >= min_score]
        request_id = uuid.uuid4().hex
        hits = [
            _hit(cases[ids[i]], rank, float(scores[i]), float(similarity[i]))
            for rank, (i, _) in enumerate(picks, start=1)
        ]
        impressions = [
            Impression(ids[i], rank, float(scores[i]), float(similarity[i]), propensity)
            for rank, (i, propensity) in enumerate(picks, start=1)
        ]
        self.bank.log_request(request_id, namespace, query, query_vec, scorer, impressions, source)
        return RetrieveResult(
            request_id=request_id,
            namespace=namespace,
            scorer=scorer,
            positive=[hit for hit in hits if hit.label == "positive"],
            negative=[hit for hit in hits if hit.label == "negative"],
            abstain=abstain_reason is not None,
            abstain_reason=abstain_reason,
        )

    def _rank(
        self,
        namespace: str,
        ids: list[int],
        query_vec: np.ndarray,
        vectors: np.ndarray,
        closeness: np.ndarray,
        k: int,
    ) -> tuple[Selection, str]:
        """The policy's pick (retriever.policy) and the name of what ranked."""
        if self.settings.ranking == "similarity":
            nothing = np.zeros(len(ids))
            return select(closeness, closeness, nothing, nothing, k, False, self._rng), "cosine"
        model = self.learner.model(namespace) if self.learner and ids else None
        plan_works = (
            model.predict(query_vec, vectors, self.bank.plan_vectors(ids)) if model else 0.5
        )
        history = self.bank.case_history(ids)
        successes, trials = contextual_evidence(query_vec, [history.get(i) for i in ids])
        selection = select(
            closeness,
            np.broadcast_to(plan_works, closeness.shape),
            successes,
            trials,
            k,
            self.settings.explore,
            self._rng,
        )
        return selection, "evidence" if model is None else f"evidence+{model.version}"

    # -- writing -------------------------------------------------------------------------------

    def record_outcome(
        self,
        *,
        request_id: str | None = None,
        task: str | None = None,
        plan: str | None = None,
        answer: str | None = None,
        reward: float | None = None,
        success: bool | None = None,
        used_case_ids: list[int] | None = None,
        metadata: dict[str, Any] | None = None,
        namespace: str | None = None,
    ) -> OutcomeReceipt:
        """Store how a task went: label what was shown for it and keep it as a new case."""
        value = self._reward(reward, success)
        new_case: NewCase | None = None
        if request_id is not None:
            request = self.bank.get_request(request_id)
            if namespace is not None and namespace != request["namespace"]:
                raise InvalidInput(
                    f"request {request_id} belongs to namespace {request['namespace']!r},"
                    f" not {namespace!r}; leave namespace out"
                )
            namespace = request["namespace"]
            if used_case_ids is not None:
                shown = self.bank.shown_case_ids(request_id)
                unknown = sorted(set(used_case_ids) - set(shown))
                if unknown:
                    raise InvalidInput(
                        f"used_case_ids {unknown} were not shown for request {request_id};"
                        f" it showed {shown}"
                    )
            if plan or answer:
                task = task or request["query"]
        elif used_case_ids is not None:
            raise InvalidInput("used_case_ids needs the request_id of the retrieval that showed them")
        if request_id is None or plan or answer:
            new_case = NewCase(
                namespace=self._namespace(namespace),
                task=self._text("task", task),
                plan=self._text("plan", plan),
                answer=self._text("answer", answer, required=False),
                reward=value,
                source="agent",
                metadata=metadata or {},
                request_id=request_id,
            )
        vector = self.encoder.encode_one(new_case.task) if new_case else None
        case_id, labelled = self.bank.record_outcome(
            value, request_id, (new_case, vector) if new_case and vector is not None else None,
            used_case_ids,
        )
        self.index.invalidate()
        if self.learner and labelled and self.settings.ranking == "learned":
            self.learner.notify_labelled(self._namespace(namespace), labelled)
        return OutcomeReceipt(
            case_id=case_id, request_id=request_id, reward=value, labelled_impressions=labelled
        )

    def store_trajectory(
        self,
        *,
        request_id: str,
        task: str,
        plan: str,
        answer: str,
        trajectory: list[dict[str, Any]],
        namespace: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Keep a solve_task run as a case whose reward arrives later via record_outcome."""
        request = self.bank.get_request(request_id)
        case = NewCase(
            namespace=self._namespace(namespace or request["namespace"]),
            task=self._text("task", task),
            plan=self._text("plan", plan),
            answer=self._text("answer", answer, required=False),
            reward=None,
            source="solve_task",
            metadata=metadata or {},
            trajectory=trajectory,
            request_id=request_id,
        )
        # solve_task stores the very query it retrieved for: reuse that vector, don't re-encode.
        same = case.task == request["query"]
        vector = self.bank.request_vector(request_id) if same else self.encoder.encode_one(case.task)
        case_id, _ = self.bank.add_case(case, vector)
        self.index.invalidate()
        return case_id

    def get_case(self, case_id: int) -> Case:
        return self.bank.get_case(case_id)

    def delete_case(self, case_id: int) -> None:
        self.bank.delete_case(case_id)
        self.index.invalidate()

    def stats(self) -> BankStats:
        return BankStats(
            **self.bank.stats(),
            encoder=self.encoder.name,
            ranking=self.settings.ranking,
            index=self.index.status(),
        )

    # -- Memento files -------------------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        namespace: str | None = None,
        skip_bad: bool = False,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Import a Memento JSONL file; each batch is one transaction, so a crash keeps whole batches.

        Bad lines stop the import before anything is written, unless skip_bad is set. Cases that
        carry an `embedding` (a cases file exported --with-embeddings) are not encoded again.
        """
        namespace = self._namespace(namespace)
        fmt, records, errors = read_jsonl(path)
        for record in records:
            for name in ("task", "plan", "answer", "query"):
                value = getattr(record, name)
                if value and len(value.encode("utf-8")) > self.settings.max_field_bytes:
                    errors.append(f"line {record.line}: {name} exceeds the field size limit")
            if record.embedding is not None and len(record.embedding) != self.encoder.dimensions:
                raise InvalidInput(
                    f"{path}, line {record.line}: embedding has {len(record.embedding)}"
                    f" dimensions, but this bank's encoder ({self.encoder.name}) makes"
                    f" {self.encoder.dimensions}; nothing was imported. Export the cases from a"
                    " bank with the same encoder, or drop the embedding fields to encode them here."
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
        case_ids = self._import_cases(records, namespace, batch_size, report, progress)
        self._import_pairs(records, case_ids, namespace, report)
        self.index.invalidate()
        return report

    def _import_cases(
        self,
        records: list[Record],
        namespace: str,
        batch_size: int,
        report: ImportReport,
        progress: Callable[[int, int], None] | None,
    ) -> list[int]:
        """Write the records' cases, encoding only those not stored yet; case_id per record."""
        hashes = [content_hash(r.task, r.plan, r.answer) for r in records]
        known = self.bank.existing_cases(namespace, list(dict.fromkeys(hashes)))
        fresh = [i for i, digest in enumerate(hashes) if digest not in known]
        fresh = list({hashes[i]: i for i in reversed(fresh)}.values())[::-1]  # first of duplicates
        report.skipped_duplicates = len(records) - len(fresh)
        for start in range(0, len(fresh), batch_size):
            batch = [records[i] for i in fresh[start : start + batch_size]]
            vectors = self._vectors(batch)
            new = [
                NewCase(namespace, r.task, r.plan, r.answer, r.reward, "import", r.metadata)
                for r in batch
            ]
            for digest, (case_id, _) in zip(
                (hashes[i] for i in fresh[start : start + batch_size]),
                self.bank.add_cases(list(zip(new, vectors, strict=True))),
                strict=True,
            ):
                known[digest] = case_id
            report.added += len(batch)
            if progress:
                progress(start + len(batch), len(fresh))
        return [known[digest] for digest in hashes]

    def _vectors(self, batch: list[Record]) -> np.ndarray:
        """The records' embeddings: the ones they carry, the encoder's for the rest."""
        missing = [i for i, r in enumerate(batch) if r.embedding is None]
        if not missing:
            return np.stack([r.embedding for r in batch])  # type: ignore[misc]
        encoded = self.encoder.encode([batch[i].task for i in missing])
        if len(missing) == len(batch):
            return encoded
        vectors = np.stack([
            r.embedding if r.embedding is not None else np.zeros(self.encoder.dimensions)
            for r in batch
        ]).astype(np.float32)
        vectors[missing] = encoded
        return vectors

    def _import_pairs(
        self, records: list[Record], case_ids: list[int], namespace: str, report: ImportReport
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
        done = self.bank.known_requests(list(request_ids.values())) if groups else set()
        todo = [query for query in groups if request_ids[query] not in done]
        for start in range(0, len(todo), 256):
            queries = todo[start : start + 256]
            for query, query_vec in zip(queries, self.encoder.encode(queries), strict=True):
                impressions = [
                    Impression(case_id, rank, 0.0, 0.0, 1.0, record.query_reward)
                    for rank, (record, case_id) in enumerate(groups[query], start=1)
                ]
                self.bank.log_request(
                    request_ids[query], namespace, query, query_vec, "import", impressions, "import"
                )
                report.impressions += len(impressions)

    def export_file(
        self, path: Path, fmt: Format, namespace: str | None = None, with_embeddings: bool = False
    ) -> int:
        if with_embeddings and fmt != "cases":
            raise InvalidInput("--with-embeddings needs the cases format (-f cases)")
        namespace = self._namespace(namespace)
        cases = self.bank.iter_cases(namespace)
        pairs = self.bank.iter_labelled_pairs(namespace)
        lookup = {case.case_id: case for case in self.bank.iter_cases(namespace)} if (
            fmt == "training_data"
        ) else {}
        count = 0
        with path.open("w", encoding="utf-8") as handle:
            vectors_of = self.bank.case_vectors if with_embeddings else None
            for line in export_lines(fmt, cases, pairs, lookup, vectors_of):
                handle.write(line + "\n")
                count += 1
        return count


def _hit(case: Case, rank: int, score: float, similarity: float) -> CaseHit:
    reward = case.reward if case.reward is not None else 0.0
    return CaseHit(
        case_id=case.case_id,
        task=case.task,
        plan=case.plan,
        answer=case.answer,
        reward=case.reward,
        label="positive" if reward >= POSITIVE_REWARD else "negative",
        score=round(min(max(score, 0.0), 1.0), 6),
        similarity=round(similarity, 6),
        rank=rank,
    )


def open_memory(settings: Settings | None = None) -> Memory:
    """The Memory for these settings: opens (or creates) the bank under settings.home."""
    settings = settings or Settings()
    bank = CaseBank(settings.db_path)
    return Memory(bank, settings, learner=LazyLearner(bank, settings))
