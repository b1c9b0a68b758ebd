"""Plots of a run (matplotlib, written as PNG without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osdml.fileio import atomic_write


def plot_training(history: list[dict[str, Any]], chosen_epoch: int | None, path: str | Path,
                  title: str = "") -> Path:
    """Loss, validation sensitivity and false-positive rate per epoch, chosen epoch marked.

    Parameters
    ----------
    history : list of dict
        ``metrics.csv`` rows: ``epoch`` (from 1), ``train_loss``, ``val_loss``, ``val_sensitivity``,
        ``val_fpr``.
    chosen_epoch : int or None
    path : path-like
        PNG file, written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def col(key):
        return [float("nan") if r.get(key) is None else r[key] for r in history]

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_rate) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, col("train_loss"), label="train loss")
    ax_loss.plot(epochs, col("val_loss"), label="validation loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_rate.plot(epochs, col("val_sensitivity"), label="validation sensitivity")
    ax_rate.plot(epochs, col("val_fpr"), label="validation false-positive rate")
    ax_rate.set_xlabel("epoch")
    ax_rate.set_ylim(-0.02, 1.02)
    for ax in (ax_loss, ax_rate):
        if chosen_epoch is not None:
            ax.axvline(chosen_epoch, color="grey", linestyle="--", label="chosen epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return Path(path)
