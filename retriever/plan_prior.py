"""What plans like this one have earned lately: an online ridge regression over plan vectors.

A case's own outcomes (retriever.policy) say nothing about a case nobody has tried, and the
trained prior model only serves after a background retrain is promoted, hundreds of outcomes
later on a fast stream. This model closes that gap from the first outcomes: every labelled
showing teaches "a plan like this one succeeded (or failed)", so an untried case whose plan
reads like plans that kept failing starts low, and one like plans that kept working starts high
(issue 9: "plans like this fail" must generalise to cases that never had an outcome).

It fits what the trained model (or the neutral 0.5) gets wrong: target = reward - base, features
= [plan vector, 1], ridge penalty `RIDGE` on the plan weights, each showing weighted by its
credit. Old showings fade with a half-life of `HALF_LIFE` showings, so a kind of plan that used
to work and now fails loses its prior too. The state is two sufficient statistics per
namespace, folded in as outcomes arrive (one matrix product per batch) and solved lazily, so a
retrieval pays for a solve only after new outcomes. A showing's base is the prior of whatever
model served when it was folded in; after a promotion those residuals fade like any others.
Torch-free: the server runs it.
"""

from __future__ import annotations

import numpy as np

from retriever.contract import Showings

RIDGE = 1.0
"""Penalty on the plan weights, in units of one whole outcome. Smaller learns a kind of plan
from fewer outcomes and overfits the wording more (bench/scenarios.py generalisation)."""

HALF_LIFE = 100.0
"""A showing counts half after this many newer ones in the namespace."""

REPEATS = 3.0
"""A case's n-th labelled showing weighs 1 / (1 + (n - 1) / REPEATS): the kind of a plan is
learnt from many cases, not from the one case that the policy keeps showing."""

CORRECTION = 0.35
"""The most this model moves a prior away from its base, either way."""


class PlanPrior:
    """One namespace's correction to the base prior, from the plans of labelled showings."""

    def __init__(self, dimensions: int) -> None:
        self.last_id = 0
        self._shown: dict[int, int] = {}  # labelled showings folded in, per case
        self._gram = np.zeros((dimensions + 1, dimensions + 1))
        self._moment = np.zeros(dimensions + 1)
        self._weights: np.ndarray | None = np.zeros(dimensions + 1)

    def fold(self, showings: Showings, base: np.ndarray) -> None:
        """Add newly labelled showings (`base`: the prior each one's case has from the base
        model), fading what was there by their number."""
        m = len(showings)
        if m:
            fade = 0.5 ** (np.arange(m - 1, -1, -1) / HALF_LIFE)  # newest last: weight 1
            repeats = np.empty(m)
            for i, case_id in enumerate(showings.case_ids.tolist()):
                repeats[i] = self._shown.get(case_id, 0)
                self._shown[case_id] = int(repeats[i]) + 1
            x = _features(showings.plan_vecs)
            w = showings.credits * fade / (1.0 + repeats / REPEATS)
            decay = 0.5 ** (m / HALF_LIFE)
            self._gram = decay * self._gram + (x * w[:, None]).T @ x
            self._moment = decay * self._moment + x.T @ (w * (showings.rewards - base))
            self._weights = None
        self.last_id = max(self.last_id, showings.last_id)

    def correct(self, base: np.ndarray, plan_vecs: np.ndarray) -> np.ndarray:
        """(N,) the base priors of N cases moved by what their plans' kind has earned."""
        if self._weights is None:
            penalty = np.full(len(self._moment), RIDGE)
            penalty[-1] = 1e-3  # the intercept (how much better than base, on the whole) is free
            self._weights = np.linalg.solve(self._gram + np.diag(penalty), self._moment)
        shift = np.clip(plan_vecs @ self._weights[:-1] + self._weights[-1], -CORRECTION, CORRECTION)
        result: np.ndarray = np.clip(base + shift, 0.02, 0.98)
        return result


def _features(plan_vecs: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(plan_vecs, dtype=np.float64), np.ones((len(plan_vecs), 1))])
