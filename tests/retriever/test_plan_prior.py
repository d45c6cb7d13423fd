"""The plan prior: what plans like a case's have earned moves the prior of cases never tried."""

from __future__ import annotations

import numpy as np

from retriever.contract import Showings
from retriever.plan_prior import CORRECTION, STALE, PlanPrior

DIM = 32


def kinds(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n plans of a cross-checking kind and n of an answer-from-memory kind: two directions
    in plan space, each plan worded differently (noise around its kind)."""
    centres = np.linalg.qr(rng.standard_normal((DIM, 2)))[0].T  # two orthogonal unit vectors

    def around(centre: np.ndarray) -> np.ndarray:
        plans = centre + 0.6 * rng.standard_normal((n, DIM)) / np.sqrt(DIM)
        return plans / np.linalg.norm(plans, axis=1, keepdims=True)

    return around(centres[0]), around(centres[1])


def showings(plans: np.ndarray, rewards: list[float], case_ids: list[int], last: int) -> Showings:
    zeros = np.zeros_like(plans)
    return Showings(
        last_id=last,
        case_ids=np.array(case_ids),
        query_vecs=zeros,
        case_vecs=zeros,
        plan_vecs=plans,
        rewards=np.array(rewards, dtype=float),
        credits=np.ones(len(rewards)),
    )


def taught(prior: PlanPrior, good: np.ndarray, bad: np.ndarray, last: int = 1) -> None:
    """Each of the first six plans of each kind tried twice: the good kind works, the bad fails."""
    plans = np.concatenate([good[:6], bad[:6]] * 2)
    rewards = [1.0] * 6 + [0.0] * 6
    prior.fold(showings(plans, rewards * 2, list(range(12)) * 2, last), np.full(len(plans), 0.5))


def test_without_outcomes_the_prior_is_the_base() -> None:
    base = np.array([0.5, 0.3, 0.9])
    plans = np.random.default_rng(0).standard_normal((3, DIM))
    np.testing.assert_array_equal(PlanPrior(DIM).correct(base, plans), base)


def test_untried_plans_of_a_kind_that_worked_start_above_those_of_a_kind_that_failed() -> None:
    good, bad = kinds(np.random.default_rng(1), 10)
    prior = PlanPrior(DIM)
    taught(prior, good, bad)
    untried = prior.correct(np.full(8, 0.5), np.concatenate([good[6:], bad[6:]]))
    assert untried[:4].min() > 0.5 > untried[4:].max()
    assert np.all(np.abs(untried - 0.5) <= CORRECTION + 1e-9)


def test_a_kind_that_stops_working_loses_its_prior_though_it_worked_longer() -> None:
    """200 cases of a kind worked, then 150 of it failed: recent outcomes outweigh older ones."""
    good, _ = kinds(np.random.default_rng(2), 400)
    prior = PlanPrior(DIM)
    prior.fold(showings(good[:200], [1.0] * 200, list(range(200)), 7), np.full(200, 0.5))
    worked = prior.correct(np.full(50, 0.5), good[350:])
    prior.fold(showings(good[200:350], [0.0] * 150, list(range(200, 350)), 9), np.full(150, 0.5))
    assert worked.min() > 0.5 > np.median(prior.correct(np.full(50, 0.5), good[350:]))
    assert prior.last_id == 9  # the next read starts after the newest outcome folded in


def test_one_case_that_keeps_working_does_not_make_its_failing_kind_look_good() -> None:
    """One case of a kind succeeded 30 times, six others of the kind failed once each: the kind's
    untried cases start low (a case's repeated showings count less and less)."""
    good, _ = kinds(np.random.default_rng(3), 10)
    prior = PlanPrior(DIM)
    prior.fold(showings(np.repeat(good[:1], 30, axis=0), [1.0] * 30, [0] * 30, 1), np.full(30, 0.5))
    prior.fold(showings(good[1:7], [0.0] * 6, list(range(1, 7)), 2), np.full(6, 0.5))
    assert prior.correct(np.full(3, 0.5), good[7:]).max() < 0.5


def test_priors_after_many_small_batches_follow_the_ridge_solved_from_scratch() -> None:
    """Outcomes arrive a few at a time and each retrieval reads the priors between them. The
    solver starts from its previous answer and solves again only once the new showings carry
    STALE of the weight: the priors are either the exact ridge fit of every showing so far, or
    unchanged since the last solve, and never for more than a few batches in a row."""
    rng = np.random.default_rng(4)
    plans = rng.standard_normal((60, DIM))
    plans /= np.linalg.norm(plans, axis=1, keepdims=True)
    prior, folded, served, behind = PlanPrior(DIM), [], np.full(60, 0.5), [0]
    for batch in range(150):
        picked = rng.integers(0, 60, size=int(rng.integers(1, 5)))
        rewards = (plans[picked, 0] + 0.3 * rng.standard_normal(len(picked)) > 0).astype(float)
        folded.append(showings(plans[picked], rewards.tolist(), picked.tolist(), batch + 1))
        prior.fold(folded[-1], np.full(len(picked), 0.5))
        exact = PlanPrior(DIM)  # everything so far in one fold: solved from scratch
        exact.fold(
            showings(
                np.concatenate([s.plan_vecs for s in folded]),
                np.concatenate([s.rewards for s in folded]).tolist(),
                np.concatenate([s.case_ids for s in folded]).tolist(),
                batch + 1,
            ),
            np.full(sum(len(s) for s in folded), 0.5),
        )
        last, served = served, prior.correct(np.full(60, 0.5), plans)
        if np.allclose(served, exact.correct(np.full(60, 0.5), plans), atol=1e-3):
            behind.append(0)
        else:  # not solved again yet: the last solve's priors
            np.testing.assert_array_equal(served, last)
            behind.append(behind[-1] + len(folded[-1]))
    # STALE of the steady-state weight (~144 showings at HALF_LIFE 100) is ~7 showings, and the
    # batch that crosses it; repeated cases weigh less, so a few more of them.
    assert max(behind) <= 12 and behind.count(0) > len(behind) / 3
