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
namespace, folded in as outcomes arrive and solved lazily: a retrieval pays for a solve only
once the showings folded in since the last one carry `STALE` of the weight. A showing's base is
the prior of whatever model served when it was folded in; after a promotion those residuals
fade like any others. Torch-free: the server runs it.

The solve is the costly part under load, where nearly every retrieval finds new outcomes: 1.4 ms
from scratch for 385 unknowns. Between two solves the system moves only by a fade and a few
showings, so conjugate gradients from the last weights, preconditioned with the inverse of an
earlier system (in float32: half the memory traffic), reach the answer in a handful of
matrix-vector products (0.4 ms on the starter bank's plans); the inverse is computed again when
they stop converging within `CG_STEPS`. A fold only scales a number and appends rows (`FLUSH`).
"""

from __future__ import annotations

from collections.abc import Callable

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

CG_TOLERANCE = 1e-4
"""Relative residual at which the weights count as solved: priors move by < 1e-3 from the exact
solution's."""

CG_STEPS = 8
"""Steps conjugate gradients may take before the preconditioner is computed again (5.4 ms)."""

STALE = 0.05
"""The weights are solved again once the showings folded in since the last solve carry this
share of all the (faded) weight: the first ~20 showings each get a solve, a namespace that has
seen hundreds one per ~7 showings, since each moves the fit by little more than its share. Under
bench/load.py's mix (2-3 showings per outcome) that is about a solve per 3 outcomes, not one
per outcome."""

FLUSH = 64
"""Newly folded rows kept apart from the gram matrix until this many: each costs every solve
step a little, and joining them costs one pass over the matrix."""


class PlanPrior:
    """One namespace's correction to the base prior, from the plans of labelled showings."""

    def __init__(self, dimensions: int) -> None:
        self.last_id = 0
        self._shown: dict[int, int] = {}  # labelled showings folded in, per case
        # The faded gram matrix is _scale * (_gram + _recent.T @ diag(_recent_w) @ _recent): a
        # fold scales one number and appends its rows instead of passing twice over 385 x 385
        # numbers; the rows join _gram `FLUSH` at a time.
        self._gram = np.zeros((dimensions + 1, dimensions + 1))
        self._scale = 1.0
        self._recent = np.zeros((0, dimensions + 1))
        self._recent_w = np.zeros(0)
        self._moment = np.zeros(dimensions + 1)
        self._penalty = np.full(dimensions + 1, RIDGE)
        self._penalty[-1] = 1e-3  # the intercept (how much better than base, on the whole) is free
        self._weights = np.zeros(dimensions + 1)
        self._unsolved = 0.0  # faded weight of the showings folded in since the last solve
        self._inverse: np.ndarray | None = None  # an earlier system's inverse: the preconditioner

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
            self._scale *= decay
            self._recent = np.vstack([self._recent, x])
            self._recent_w = np.concatenate([self._recent_w, w / self._scale])
            if len(self._recent_w) >= FLUSH or self._scale < 1e-100:
                self._flush()
            self._moment *= decay
            self._moment += x.T @ (w * (showings.rewards - base))
            self._unsolved = self._unsolved * decay + float(w.sum())
        self.last_id = max(self.last_id, showings.last_id)

    def correct(self, base: np.ndarray, plan_vecs: np.ndarray) -> np.ndarray:
        """(N,) the base priors of N cases moved by what their plans' kind has earned."""
        # The intercept's feature is 1, so its gram entry is the faded weight of every showing.
        weight = self._scale * (self._gram[-1, -1] + self._recent_w.sum())
        if self._unsolved > STALE * weight:
            self._weights, self._unsolved = self._solve(), 0.0
        shift = plan_vecs @ self._weights[:-1] + self._weights[-1]
        shift = np.minimum(np.maximum(shift, -CORRECTION), CORRECTION)  # np.clip: twice the cost
        result: np.ndarray = np.minimum(np.maximum(base + shift, 0.02), 0.98)
        return result

    def _flush(self) -> None:
        """Move the recent rows into the gram matrix, and its scale into its numbers."""
        self._gram += (self._recent * self._recent_w[:, None]).T @ self._recent
        self._gram *= self._scale
        self._scale = 1.0
        self._recent, self._recent_w = self._recent[:0], self._recent_w[:0]

    def _times_system(self, v: np.ndarray) -> np.ndarray:
        """(gram + penalty) @ v, without forming the sum."""
        recent = self._recent.T @ (self._recent_w * (self._recent @ v))
        result: np.ndarray = self._scale * (self._gram @ v + recent) + self._penalty * v
        return result

    def _solve(self) -> np.ndarray:
        if self._inverse is not None:
            weights = _conjugate_gradients(
                self._times_system, self._moment, self._inverse, self._weights
            )
            if weights is not None:
                return weights
        self._flush()
        system = self._gram.copy()
        system[np.diag_indices_from(system)] += self._penalty
        inverse = np.linalg.inv(system)
        self._inverse = inverse.astype(np.float32)  # half the memory traffic, as good a guide
        result: np.ndarray = inverse @ self._moment
        return result


def _conjugate_gradients(
    times_system: Callable[[np.ndarray], np.ndarray],
    target: np.ndarray,
    preconditioner: np.ndarray,
    start: np.ndarray,
) -> np.ndarray | None:
    """Solve system @ x = target from `start`, or None if CG_STEPS do not reach CG_TOLERANCE."""

    def precondition(residual: np.ndarray) -> np.ndarray:
        return (preconditioner @ residual.astype(np.float32)).astype(np.float64)

    x = start.copy()
    residual = target - times_system(x)
    goal = CG_TOLERANCE * max(float(np.linalg.norm(target)), 1e-12)
    z = precondition(residual)
    direction, rz = z, float(residual @ z)
    for _ in range(CG_STEPS):
        if float(np.linalg.norm(residual)) <= goal:
            return x
        moved = times_system(direction)
        step = rz / float(direction @ moved)
        x += step * direction
        residual -= step * moved
        z = precondition(residual)
        rz, previous = float(residual @ z), rz
        direction = z + (rz / previous) * direction
    return x if float(np.linalg.norm(residual)) <= goal else None


def _features(plan_vecs: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(plan_vecs, dtype=np.float64), np.ones((len(plan_vecs), 1))])
