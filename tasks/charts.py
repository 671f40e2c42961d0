"""Small PNG charts of the holdout (confusion matrix, score histogram) for the markdown artifact.

The Prefect UI renders markdown images given as data: URIs, so the charts travel inside
the artifact and need no file server.
"""

import base64
import io

import matplotlib

# A headless worker has no display; Agg renders to memory only.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from retrain_guard.tasks.reporting import ConfusionMatrix, ScoreDistribution

DPI = 80


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """Return the PNG as a data: URI for a markdown image."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def confusion_matrix_png(matrix: ConfusionMatrix | None) -> bytes | None:
    """Draw the holdout confusion matrix with counts; None when the report has none."""
    if matrix is None:
        return None
    labels, values = matrix.labels, matrix.rows_true_columns_predicted
    if len(labels) != 2 or not values:
        return None
    figure, axes = plt.subplots(figsize=(3.4, 2.8))
    axes.imshow(values, cmap="Blues")
    top = max(max(row) for row in values) or 1
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            colour = "white" if value > top / 2 else "black"
            axes.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=12)
    axes.set_xticks([0, 1], labels)
    axes.set_yticks([0, 1], labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Holdout confusion matrix", fontsize=10)
    return _png(figure)


def score_histogram_png(distribution: ScoreDistribution | None, threshold: float) -> bytes | None:
    """Draw the positive-class score histogram per true class, with the threshold line."""
    if distribution is None or not distribution.bin_edges:
        return None
    edges = distribution.bin_edges
    lefts = edges[:-1]
    width = edges[1] - edges[0] if len(edges) > 1 else 1.0
    figure, axes = plt.subplots(figsize=(5.0, 2.8))
    for (name, counts), colour in zip(
        distribution.histogram.items(), ("tab:blue", "tab:orange"), strict=False
    ):
        total = sum(counts) or 1
        shares = [c / total for c in counts]
        axes.bar(
            lefts,
            shares,
            width=width,
            align="edge",
            alpha=0.55,
            color=colour,
            label=f"true {name} ({total})",
        )
    axes.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("score of the positive class")
    axes.set_ylabel("share of the class")
    axes.set_title("Holdout scores per true class", fontsize=10)
    axes.legend(fontsize=8)
    return _png(figure)
