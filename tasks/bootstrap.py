"""A paired, class-stratified bootstrap of two models' scores on the same rows.

`paired_bootstrap` measures PR-AUC (average precision, as scikit-learn defines it), ROC-AUC
and the positive-class recall at each model's own threshold for a new and an old model, and
the 95% interval of their paired difference (new - old) over bootstrap replicates.

It is built to stay cheap at a million rows:
- a replicate is a Poisson(1) weight per row (the large-sample equivalent of drawing rows
  with replacement), read from a lookup table of one random byte instead of a Poisson
  sampler (its probabilities are rounded to 1/256: mean and variance 1.004 instead of 1,
  which no metric here notices, as each is a ratio of weights); the same weights serve both
  models, so the difference is paired;
- each model's scores are sorted once; the rows are laid out in the new model's order, so
  only the old model's weights are gathered, once per block of replicates;
- the weighted metrics of a block of replicates come from integer segment sums: the
  positives per run of tied scores, the negatives per stretch between two such runs,
  vectorised over the replicates of the block; what follows works on those few sums;
- stratified by class: each replicate keeps the holdout's class counts, by rescaling the
  weights of each class to sum to its count. ROC-AUC and recall do not depend on that
  scale; precision, and so PR-AUC, does, and is computed with it.
"""

from dataclasses import dataclass

import numpy as np

METRICS = ("pr_auc", "roc_auc", "minority_recall")
# Replicates per block: bounds the memory of a block to about 4 bytes x rows x BLOCK.
BLOCK = 32


def _poisson_lut() -> np.ndarray:
    """Map a uniform byte to a Poisson(1) count (the inverse of its CDF, rounded to 1/256)."""
    k = np.arange(12)
    pmf = np.exp(-1.0) / np.cumprod(np.maximum(k, 1))
    cdf = np.round(np.cumsum(pmf) * 256)
    return np.searchsorted(cdf, np.arange(256), side="right").astype(np.uint8)


_LUT = _poisson_lut()


def poisson_weights(rng: np.random.Generator, replicates: int, rows: int) -> np.ndarray:
    """Return a (replicates, rows) uint8 array of Poisson(1) counts."""
    draws = np.frombuffer(rng.bytes(rows * replicates), dtype=np.uint8)
    return _LUT[draws].reshape(replicates, rows)


@dataclass(frozen=True)
class Ranked:
    """One model's scores sorted once, as the weighted metrics need them.

    Only the positions of the negatives relative to the positives matter: the negatives fall
    into bins, 2k for those scored below k groups of tied positive scores (and above the
    rest), 2k + 1 for those tied with group k. Bins are contiguous in sorted order, so a
    replicate's negative weight per bin is one segment sum.
    """

    # Sorting permutations of the negatives and of the positives (descending scores).
    neg_order: np.ndarray
    pos_order: np.ndarray
    # First sorted positive of each group of tied positive scores.
    group_starts: np.ndarray
    # The first sorted negative of each non-empty negative bin.
    bin_starts: np.ndarray
    # Per positive group, the non-empty bin that ends the negatives scored at or above it
    # (its tie bin, else the last before it), and its tie bin; both shifted by one, 0: none.
    above_end: np.ndarray
    tie_at: np.ndarray
    # Groups of positive scores at or above the threshold (they come first).
    cut: int

    @classmethod
    def of(cls, negatives: np.ndarray, positives: np.ndarray, threshold: float) -> "Ranked":
        neg_order = np.argsort(-negatives, kind="stable")
        pos_order = np.argsort(-positives, kind="stable")
        neg, pos = -negatives[neg_order], -positives[pos_order]  # ascending
        groups, group_starts = np.unique(pos, return_index=True)
        above = np.searchsorted(groups, neg, side="left")
        tied = np.zeros(len(neg), dtype=bool)
        inside = above < len(groups)
        tied[inside] = groups[above[inside]] == neg[inside]
        bins, bin_starts = np.unique(2 * above + tied, return_index=True)
        tie_bins = 2 * np.arange(len(groups)) + 1
        at = np.searchsorted(bins, tie_bins, side="right")
        has_tie = (at > 0) & (bins[np.maximum(at - 1, 0)] == tie_bins)
        return cls(
            neg_order=neg_order,
            pos_order=pos_order,
            group_starts=group_starts,
            bin_starts=bin_starts,
            above_end=at,
            tie_at=np.where(has_tie, at, 0),
            cut=int(np.count_nonzero(-groups >= threshold)),
        )


def weighted_metrics(
    ranked: Ranked, negatives: np.ndarray, positives: np.ndarray, counts: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Return each metric per replicate (a row of the weights).

    `negatives` and `positives` are the rows' weights in `ranked`'s sorted order; `counts`
    are the holdout's (negative, positive) rows, to which each replicate's class weights are
    rescaled. A metric is NaN in a replicate that drew no row of a class.
    """
    width = negatives.shape[0]
    zero = np.zeros((width, 1))
    # int32 sums are exact here (weights of at most 5, fewer than 400M rows) and fast;
    # float64 holds every integer sum below 2**53 exactly.
    per_group = np.add.reduceat(positives, ranked.group_starts, axis=1, dtype=np.int32)
    per_group = per_group.astype(float)
    per_bin = np.add.reduceat(negatives, ranked.bin_starts, axis=1, dtype=np.int32)
    per_bin = np.concatenate([zero, per_bin], axis=1)
    cumulative = np.cumsum(per_bin, axis=1)
    tp = np.cumsum(per_group, axis=1)
    # Negatives scored at or above each positive group: the bins up to its tie bin.
    fp = cumulative[:, ranked.above_end]
    pos, neg = tp[:, -1], cumulative[:, -1]
    # ROC-AUC: each positive beats the negatives scored below it, half of those tied.
    beaten = pos * neg - np.einsum("ij,ij->i", per_group, fp)
    if ranked.tie_at.any():
        beaten += 0.5 * np.einsum("ij,ij->i", per_group, per_bin[:, ranked.tie_at])
    # Average precision with each class reweighted to its holdout count.
    with np.errstate(divide="ignore", invalid="ignore"):
        roc = beaten / (pos * neg)
        fp *= ((counts[0] / neg) / (counts[1] / pos))[:, None]
        fp += tp
        precision = np.divide(tp, fp, out=np.zeros_like(tp), where=fp > 0)
        ap = np.einsum("ij,ij->i", per_group, precision) / pos
        recall = tp[:, ranked.cut - 1] / pos if ranked.cut else np.zeros_like(pos)
    invalid = (pos == 0) | (neg == 0)
    return {
        "pr_auc": np.where(invalid, np.nan, ap),
        "roc_auc": np.where(invalid, np.nan, roc),
        "minority_recall": np.where(pos == 0, np.nan, recall),
    }


@dataclass(frozen=True)
class PairedInterval:
    """A metric of both models, their difference and its bootstrap interval."""

    new: float
    old: float
    low: float
    high: float

    @property
    def difference(self) -> float:
        return self.new - self.old


class PairedBootstrap:
    """Both models ranked once, their point values, and the replicates drawn so far.

    `draw` adds replicates in blocks, so a caller can stop as soon as what it decides is
    settled (tasks/compare.py); `intervals` reads the central `level` share of them.
    """

    def __init__(
        self,
        y: np.ndarray,
        new_scores: np.ndarray,
        old_scores: np.ndarray,
        thresholds: tuple[float, float],
        seed: int = 0,
    ) -> None:
        y = np.asarray(y)
        new_scores, old_scores = np.asarray(new_scores, float), np.asarray(old_scores, float)
        is_neg, is_pos = y != 1, y == 1
        self.new = Ranked.of(new_scores[is_neg], new_scores[is_pos], thresholds[0])
        # Weights are drawn in the new model's sorted order; the old model gathers them.
        self.old = Ranked.of(
            old_scores[is_neg][self.new.neg_order],
            old_scores[is_pos][self.new.pos_order],
            thresholds[1],
        )
        self.counts = (int(is_neg.sum()), int(is_pos.sum()))
        self.rows = len(y)
        self.rng = np.random.default_rng(seed)
        self.blocks: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
        self.replicates = 0
        point_new, point_old = self._both(np.ones((1, self.rows), dtype=np.uint8))
        self.point_new = {m: float(point_new[m][0]) for m in METRICS}
        self.point_old = {m: float(point_old[m][0]) for m in METRICS}

    def _both(self, weights: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        negatives, positives = weights[:, : self.counts[0]], weights[:, self.counts[0] :]
        return (
            weighted_metrics(self.new, negatives, positives, self.counts),
            weighted_metrics(
                self.old,
                np.take(negatives, self.old.neg_order, axis=1),
                np.take(positives, self.old.pos_order, axis=1),
                self.counts,
            ),
        )

    def draw(self, replicates: int) -> "PairedBootstrap":
        """Draw `replicates` more replicates (in blocks of BLOCK)."""
        done = 0
        while done < replicates:
            block = min(BLOCK, replicates - done)
            of_new, of_old = self._both(poisson_weights(self.rng, block, self.rows))
            for m in METRICS:
                self.blocks[m].append(of_new[m] - of_old[m])
            done += block
        self.replicates += replicates
        return self

    def differences(self, metric: str) -> np.ndarray:
        """Return the defined replicates of new - old for `metric`."""
        if not self.blocks[metric]:
            return np.empty(0)
        values = np.concatenate(self.blocks[metric])
        return values[~np.isnan(values)]

    def intervals(self, level: float = 0.95) -> dict[str, PairedInterval]:
        """Return per metric both models' values and the central `level` interval of new - old."""
        tail = 100 * (1 - level) / 2
        result = {}
        for m in METRICS:
            values = self.differences(m)
            low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (np.nan,) * 2
            result[m] = PairedInterval(
                new=self.point_new[m], old=self.point_old[m], low=float(low), high=float(high)
            )
        return result


def paired_bootstrap(
    y: np.ndarray,
    new_scores: np.ndarray,
    old_scores: np.ndarray,
    thresholds: tuple[float, float],
    replicates: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, PairedInterval]:
    """Return per metric both models' values and the interval of new - old.

    Args:
        y: 1 for the positive (minority) class, else 0; both classes must be present.
        new_scores, old_scores: each model's positive-class score of the same rows.
        thresholds: (new, old) decision thresholds; recall counts scores at or above.
        replicates: bootstrap replicates; the interval is their central `level` share.
    """
    drawn = PairedBootstrap(y, new_scores, old_scores, thresholds, seed).draw(replicates)
    return drawn.intervals(level)
