"""Checkpoint choice on the validation part, and the per-epoch metrics file.

After every validation pass the ``CheckpointChoice`` callback scores the epoch by the configured
criterion and keeps a copy of the weights of the best epoch so far, and of the epoch with the
lowest validation loss. Only validation numbers are used; test windows never reach training.

Criteria (``TrainConfig.checkpoint_metric``):

- ``min_fpr``: lowest window false-positive rate, among epochs with sensitivity at least
  ``min_sensitivity`` (ties: higher sensitivity, then lower loss);
- ``youden``: highest sensitivity - FPR; ``f_beta``: highest F-beta of the seizure class;
- ``val_loss``: lowest validation loss.

The metric criteria consider only epochs that reach ``min_sensitivity``, stay within
``max_fpr`` (when set) and predict both classes. A model that predicts one class only is never
chosen silently: if no epoch qualifies, a warning says why and the lowest-loss epoch is used.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from osdml.config import TrainConfig
from osdml.fileio import atomic_write

CSV_FIELDS = ("epoch", "lr", "train_loss", "val_loss", "val_sensitivity", "val_fpr",
              "val_precision", "val_f1", "val_f_beta", "val_youden", "val_roc_auc",
              "val_predicted_classes", "best_so_far")


def epoch_score(row: dict[str, Any], cfg: TrainConfig) -> tuple | None:
    """Sort key of an epoch's validation numbers (higher is better), or None when the epoch
    cannot be chosen by ``cfg.checkpoint_metric``."""
    loss = row.get("val_loss")
    if loss is None or (isinstance(loss, float) and math.isnan(loss)):
        return None
    if cfg.checkpoint_metric == "val_loss":
        return (-loss,)
    sens, fpr = row.get("val_sensitivity"), row.get("val_fpr")
    if row.get("val_predicted_classes", 0) < 2 or sens is None or fpr is None:
        return None
    if sens < cfg.min_sensitivity or (cfg.max_fpr is not None and fpr > cfg.max_fpr):
        return None
    if cfg.checkpoint_metric == "min_fpr":
        return (-fpr, sens, -loss)
    value = row.get("val_youden" if cfg.checkpoint_metric == "youden" else "val_f_beta")
    return None if value is None else (value, -loss)


@dataclass
class Choice:
    """The chosen epoch (counted from 1), the criterion that chose it, and the warning if it fell
    back to the lowest validation loss."""

    epoch: int
    criterion: str
    warning: str | None
    state_dict: dict[str, Any]


class CheckpointChoice(L.Callback):
    """Keep the best weights by the configured criterion, and write ``metrics.csv``.

    Parameters
    ----------
    config : TrainConfig
    csv_path : Path, optional
        Rewritten atomically after every epoch with one row per epoch (``CSV_FIELDS``).
    """

    def __init__(self, config: TrainConfig, csv_path: Path | None = None):
        self.cfg = config
        self.csv_path = csv_path
        self.history: list[dict[str, Any]] = []
        self._best: tuple[tuple, int, dict] | None = None
        self._best_loss: tuple[tuple, int, dict] | None = None
        self._pending: dict[str, Any] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # after the module's on_validation_epoch_end and the epoch-level reduction of val_loss
        if trainer.sanity_checking:
            return
        m = getattr(module, "val_metrics", {}) or {}
        loss = trainer.callback_metrics.get("val_loss")
        row = {"epoch": trainer.current_epoch + 1,  # counted from 1, as users count
               "lr": trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None,
               "val_loss": None if loss is None else float(loss),
               **{f"val_{k}": m.get(k) for k in ("sensitivity", "fpr", "precision", "f1",
                                                 "f_beta", "youden", "roc_auc",
                                                 "predicted_classes")}}
        score = epoch_score(row, self.cfg)
        row["best_so_far"] = False
        if score is not None and (self._best is None or score > self._best[0]):
            self._best = (score, row["epoch"], _copy_state(module))
            row["best_so_far"] = True
        loss_score = epoch_score(row, self.cfg.model_copy(update={"checkpoint_metric":
                                                                  "val_loss"}))
        if loss_score is not None and (self._best_loss is None or loss_score > self._best_loss[0]):
            self._best_loss = (loss_score, row["epoch"], _copy_state(module))
        self._pending = row

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._pending is None:
            return
        loss = trainer.callback_metrics.get("train_loss")
        self._pending["train_loss"] = None if loss is None else float(loss)
        self.history.append(self._pending)
        self._pending = None
        if self.csv_path is not None and trainer.is_global_zero:
            write_metrics_csv(self.csv_path, self.history)

    def state_dict(self) -> dict[str, Any]:
        """History and the kept weights, saved in Lightning checkpoints (for resume)."""
        return {"history": self.history, "best": self._best, "best_loss": self._best_loss}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
        self._best = _tuple(state_dict["best"])
        self._best_loss = _tuple(state_dict["best_loss"])
        if self.csv_path is not None and self.history:
            write_metrics_csv(self.csv_path, self.history)

    def choice(self) -> Choice:
        """The chosen weights.

        Raises
        ------
        RuntimeError
            If no validation pass ran (nothing to choose from).
        """
        if self._pending is not None:  # validation ran but the epoch did not finish
            self.history.append(self._pending)
            self._pending = None
        if self._best is not None:
            return Choice(self._best[1], self.cfg.checkpoint_metric, None, self._best[2])
        if self._best_loss is None:
            raise RuntimeError("no validation pass completed; nothing to choose a checkpoint "
                               "from")
        why = (f"no epoch met checkpoint_metric={self.cfg.checkpoint_metric!r} (sensitivity >= "
               f"{self.cfg.min_sensitivity}"
               + (f", FPR <= {self.cfg.max_fpr}" if self.cfg.max_fpr is not None else "")
               + ", both classes predicted)")
        warning = f"{why}; using the epoch with the lowest validation loss instead"
        warnings.warn(warning, stacklevel=2)
        return Choice(self._best_loss[1], "val_loss", warning, self._best_loss[2])


def _tuple(best):
    """A (score, epoch, weights) entry as saved (lists after a round trip) -> tuples."""
    if best is None:
        return None
    score, epoch, weights = best
    return (tuple(score), int(epoch), weights)


def _copy_state(module: L.LightningModule) -> dict[str, Any]:
    return copy.deepcopy(module.model.state_dict())


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Write the per-epoch rows to `path` atomically (empty cells for undefined values)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in history:
        w.writerow({k: "" if row.get(k) is None else row.get(k) for k in CSV_FIELDS})
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
