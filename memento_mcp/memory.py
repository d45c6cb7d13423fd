"""Memory: the case bank, the encoder, the index and the learned retriever working as one.

Every MCP tool and CLI command that retrieves or records goes through this class, so the server,
the CLI, the agent loop and the tests all reach the same code. Checks on input live in
`validation`, Memento's files in `transfer`, how cases are ranked in `retriever.policy`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from memento_mcp import validation
from memento_mcp.casebank import CaseBank, Impression, NewCase, open_bank
from memento_mcp.errors import InvalidInput, StorageError
from memento_mcp.models import (
    POSITIVE_REWARD,
    BankStats,
    Case,
    CaseHit,
    OutcomeReceipt,
    RetrieveResult,
)
from memento_mcp.retrieval.encoder import Encoder, shared_encoder
from memento_mcp.retrieval.index import open_index
from memento_mcp.settings import Settings
from retriever.policy import Selection, contextual_evidence, relevance, select, worth_weighing

if TYPE_CHECKING:
    from retriever.online import OnlineTrainer, Weighed

log = logging.getLogger(__name__)

_LEXICAL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="memento-lexical")
"""Where retrieve runs its lexical search, beside the query's encoding."""

LEXICAL_WEIGHT = 0.15
"""Share of a candidate's relevance that comes from FTS5 matches on the query's rare words."""

_PLAN_ENCODING = threading.Lock()
"""Plans are encoded one at a time by one thread at a time. ONNX Runtime keeps the buffers of
the largest inputs it has seen: server threads each encoding a batch of long plans grew the
server by 310 MB over a load run, one plan at a time by 57 MB (bench/load.py, starter bank)."""

_PLANS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memento-plans")
"""Where plans that a retrieval found without a vector are embedded, off the request path."""

PLAN_CACHE = 20_000
"""Plan vectors a process keeps (1.5 KB each). A case's plan never changes and a deleted case's
id is never reused, so a kept vector is never stale; it saves the plan read on each retrieval
(bench/load.py)."""


class Learner(Protocol):
    """The learned retriever as Memory sees it (retriever.online.OnlineTrainer)."""

    def weigh(
        self,
        namespace: str,
        query_vec: np.ndarray,
        case_ids: list[int],
        case_vecs: np.ndarray,
        plan_vecs: np.ndarray,
    ) -> Weighed: ...

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

    def weigh(
        self,
        namespace: str,
        query_vec: np.ndarray,
        case_ids: list[int],
        case_vecs: np.ndarray,
        plan_vecs: np.ndarray,
    ) -> Weighed:
        return self.trainer.weigh(namespace, query_vec, case_ids, case_vecs, plan_vecs)

    def notify_labelled(self, namespace: str, n: int) -> None:
        self.trainer.notify_labelled(namespace, n)


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
        self.index = open_index(bank, self.encoder.dimensions, ann_min_cases=settings.ann_min_cases)
        self.learner = learner
        self._rng = np.random.default_rng()
        self._plan_cache: dict[int, np.ndarray] = {}
        self._plans_queued: set[int] = set()  # cases whose plan _PLANS is embedding
        self._plans_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the bank. Plans still queued for embedding are dropped without a word: their
        tasks keep standing in, and the next server queues them again when it weighs them."""
        self._closed = True
        self.bank.close()

    def _text(self, name: str, value: str | None, required: bool = True) -> str:
        return validation.text(name, value, self.settings.max_field_bytes, required)

    def _namespace(self, namespace: str | None) -> str:
        return validation.namespace(namespace, self.settings.namespace)

    # -- retrieval -----------------------------------------------------------------------------

    def retrieve(
        self,
        query: str,
        k: int = 4,
        namespace: str | None = None,
        min_score: float | None = None,
        source: str = "retrieve_cases",
        client_id: str | None = None,
    ) -> RetrieveResult:
        """Dense + lexical candidates → ranked by what their outcomes say → impressions logged."""
        query = self._text("query", query)
        namespace = self._namespace(namespace)
        if not 1 <= k <= 50:
            raise InvalidInput(f"k must be between 1 and 50, got {k}")
        n = self.settings.candidates
        # FTS5 runs while the encoder does: both release the GIL, so on two cores the lexical
        # half costs nothing it did not already wait for (issue 10: 1M cases, ~4 ms of each).
        lexical_matches = _LEXICAL.submit(self.bank.lexical_search, namespace, query, n)
        query_vec = self.encoder.encode_one(query)
        lexical = dict(lexical_matches.result())
        # Dense matches first, then lexical ones: only answered cases, with their vectors (on
        # Postgres the search and the read are one statement).
        ids, vectors = self.index.candidates(namespace, query_vec, n, list(lexical))
        if not ids:
            vectors = np.zeros((0, len(query_vec)), dtype=np.float32)
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
        # Only the shown cases are read in full (1M: 100 candidates' rows cost 1.8 ms); one
        # deleted meanwhile by another process is left out.
        cases = self.bank.cases_by_id([ids[i] for i, _ in picks])
        picks = [(i, p) for i, p in picks if ids[i] in cases]
        request_id = uuid.uuid4().hex
        hits = [
            _hit(cases[ids[i]], rank, float(scores[i]), float(similarity[i]))
            for rank, (i, _) in enumerate(picks, start=1)
        ]
        impressions = [
            Impression(ids[i], rank, float(scores[i]), float(similarity[i]), propensity)
            for rank, (i, propensity) in enumerate(picks, start=1)
        ]
        if not self.bank.read_only:  # a read-only bank serves without logging (issue 12)
            self.bank.log_request(
                request_id, namespace, query, query_vec, scorer, impressions, source, client_id
            )
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
        # Only candidates relevant enough to be shown are worth a model's forward and a read of
        # their outcomes; the others keep the neutral prior and no evidence (policy.worth_weighing).
        rel = relevance(closeness)
        weighed = worth_weighing(rel)
        chosen = [ids[i] for i in weighed]
        plan_works, model = np.full(len(ids), 0.5), None
        if self.learner and chosen:
            learnt = self.learner.weigh(
                namespace, query_vec, chosen, vectors[weighed], self._plan_vectors(chosen)
            )
            plan_works[weighed], history, model = learnt.priors, learnt.history, learnt.model
        else:
            history = self.bank.case_history(chosen)
        successes, trials = np.zeros(len(ids)), np.zeros(len(ids))
        successes[weighed], trials[weighed], unchanged = contextual_evidence(
            query_vec, history, len(chosen)
        )
        # The priors were learnt from the past these outcomes belong to, so they count as much
        # as the chance that nothing changed for queries like this one: 0.06 once a leader with
        # 10 successes fails 3 times in a row, 0.3-0.65 in a steady neighbourhood of ~20
        # outcomes, where the cases' own records speak for them (contract.CHANGE_HAZARD 0.1;
        # measured at 0.05, in process, 10 seeds: namespaces 0.94 -> 0.97, k4_unused 0.90 ->
        # 0.93 of the oracle; drift 0.90 -> 0.91, its worst seed 0.85 -> 0.79).
        plan_works = 0.5 + (plan_works - 0.5) * unchanged
        selection = select(
            closeness,
            plan_works,
            successes,
            trials,
            k,
            self.settings.explore,
            self._rng,
            rel,
        )
        return selection, "evidence" if model is None else f"evidence+{model.version}"

    def _plan_vectors(self, case_ids: list[int]) -> np.ndarray:
        """The cases' plan embeddings. A plan without one yet (a case imported with its vectors,
        or from before plans were embedded) is embedded in the background; until then its
        task's vector stands in for it, as in training. Encoded on the request path, these plans
        made a fresh 10k bank's first 100 retrievals take 27 ms at the median; now 7.5, and 5.2
        once they are embedded (bench/retrieval.py)."""
        cache = self._plan_cache  # shared by the server's threads: read each entry once
        known = {case_id: v for case_id in case_ids if (v := cache.get(case_id)) is not None}
        unknown = [case_id for case_id in case_ids if case_id not in known]
        if unknown:
            vectors, missing = self.bank.plan_vectors(unknown)
            stand_ins = set(missing)
            fresh = {c: v for c, v in zip(unknown, vectors, strict=True) if c not in stand_ins}
            if missing:
                self._embed_later(missing)
            if len(cache) + len(fresh) > PLAN_CACHE:
                cache.clear()
            cache.update(fresh)
            known.update(zip(unknown, vectors, strict=True))
        return np.array([known[case_id] for case_id in case_ids])  # np.stack: twice the cost

    def _embed_later(self, case_ids: list[int]) -> None:
        with self._plans_lock:
            new = [case_id for case_id in case_ids if case_id not in self._plans_queued]
            self._plans_queued.update(new)
        if new:
            _PLANS.submit(self._embed_plans, new, rest=True)

    def _embed_plans(self, case_ids: list[int], rest: bool = False) -> None:
        """Embed these cases' plans and store them (a read-only bank: keep them in memory; a case
        deleted meanwhile is skipped). With `rest`, after each plan wait as long as it took: the
        background keeps to half the encoder, and a request waits for at most one plan of it."""
        try:
            cases = self.bank.cases_by_id(case_ids)
            for case_id in [case_id for case_id in case_ids if case_id in cases]:
                if self._closed:
                    return
                started = time.monotonic()
                with _PLAN_ENCODING:
                    vector = self.encoder.encode_one(cases[case_id].plan)
                if not self.bank.read_only:
                    self.bank.add_plan_vectors({case_id: vector})
                self._plan_cache[case_id] = vector
                if rest:
                    time.sleep(time.monotonic() - started)
        except StorageError as exc:  # the plan keeps its stand-in, queued again when next weighed
            if not self._closed:  # a closing server's queue: nothing is wrong, nothing to say
                log.warning(
                    "embedding %d plans failed, their tasks stand in: %s", len(case_ids), exc
                )
        finally:
            with self._plans_lock:
                self._plans_queued.difference_update(case_ids)

    def _embed_new_plan(self, case_id: int) -> None:
        """Embed a stored case's plan unless it has been (a repeat, or a solve_task case that an
        outcome completes): new cases rank with their plan from their first retrieval."""
        if self.bank.plan_vectors([case_id])[1]:
            self._embed_plans([case_id])

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
        client_id: str | None = None,
    ) -> OutcomeReceipt:
        """Store how a task went: label what was shown for it and keep it as a new case.

        `client_id` is who reports it (provenance; a repeated report of theirs is idempotent).
        """
        self.bank.require_writable()
        value = validation.reward(reward, success)
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
                client_id=client_id,
            )
        vector = self.encoder.encode_one(new_case.task) if new_case else None
        done = self.bank.record_outcome(
            value, request_id, (new_case, vector) if new_case and vector is not None else None,
            used_case_ids, client_id,
        )
        self.index.invalidate()
        if done.case_id is not None and not done.duplicate:
            self._embed_new_plan(done.case_id)
        fresh = done.labelled and not done.duplicate
        if self.learner and fresh and self.settings.ranking == "learned":
            self.learner.notify_labelled(self._namespace(namespace), done.labelled)
        return OutcomeReceipt(
            case_id=done.case_id, request_id=request_id, reward=done.reward,
            labelled_impressions=done.labelled, case_reward=done.case_reward,
            duplicate=done.duplicate, client_id=done.client_id, recorded_at=done.recorded_at,
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
        client_id: str | None = None,
    ) -> int:
        """Keep a solve_task run as a case whose reward arrives later via record_outcome."""
        self.bank.require_writable()
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
            client_id=client_id,
        )
        # solve_task stores the very query it retrieved for: reuse that vector, don't re-encode.
        same = case.task == request["query"]
        vector = self.bank.request_vector(request_id) if same else self.encoder.encode_one(case.task)
        case_id, _ = self.bank.add_case(case, vector)
        self.index.invalidate()
        self._embed_new_plan(case_id)
        return case_id

    def get_case(self, case_id: int, namespaces: Collection[str] | None = None) -> Case:
        """The case (with `namespaces`: only one of theirs; any other reads as missing)."""
        return self.bank.get_case(case_id, namespaces)

    def delete_case(self, case_id: int, namespaces: Collection[str] | None = None) -> None:
        self.bank.delete_case(case_id, namespaces)
        self.index.invalidate()

    def stats(self, namespaces: Collection[str] | None = None) -> BankStats:
        """Counts for the whole bank, or (`namespaces`) for those namespaces only."""
        index = self.index.status()
        if namespaces is not None:
            index = {ns: status for ns, status in index.items() if ns in namespaces}
        return BankStats(
            **self.bank.stats(namespaces),
            encoder=self.encoder.name,
            ranking=self.settings.ranking,
            index=index,
        )


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
    bank = open_bank(settings.bank_location, cache_dir=settings.home / "cache")
    return Memory(bank, settings, learner=LazyLearner(bank, settings))
