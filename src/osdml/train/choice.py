"""Checkpoint choice on the validation part, and the per-epoch metrics file.

After every validation pass the ``CheckpointChoice`` callback scores the epoch by the configured
criterion and keeps a copy of the weights of the best epoch so far, and of the epoch with the
lowest validation loss. Only validation numbers are used; test windows never reach training.

Criteria (``TrainConfig.checkpoint_metric``):

- ``min_fpr``: lowest window false-positive rate, among epochs with sensitivity at least
  ``min_sensitivity`` (ties: higher sensitivity, then lower loss);
- ``youden``: highest sensitivity - FPR; ``f_beta``: highest F-beta of the seizure class
  (precision and sensitivity);
- ``f_beta_spec``: highest ``(1 + b^2) sens spec / (b^2 spec + sens)`` with spec = 1 - FPR:
  nnTraining2's ``f_beta`` (``calculate_selection_metric`` in nnTrainer.py), an F-beta with
  specificity in the place of precision;
- ``dual_improvement``: nnTraining2's default rule (nnTrainer.py, after Spahr et al. 2025):
  an epoch is kept when both sensitivity and FPR improve on the last kept epoch, or when its
  FPR is more than ``dual_far_reduction`` (relative) below the last kept one with sensitivity
  within ``dual_sensitivity_tolerance`` of it; the last epoch so kept is the choice. Until an
  epoch meets the criteria below, epochs are kept when both improve (nnTraining2's fallback),
  and such a choice carries a warning;
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
    if cfg.checkpoint_metric == "f_beta_spec":
        return (f_beta_spec(sens, fpr, cfg.f_beta), -loss)
    if cfg.checkpoint_metric == "dual_improvement":
        return (sens, -fpr)  # qualifies; the choice itself is sequential (CheckpointChoice)
    value = row.get("val_youden" if cfg.checkpoint_metric == "youden" else "val_f_beta")
    return None if value is None else (value, -loss)


def f_beta_spec(sensitivity: float, fpr: float, beta: float) -> float:
    """nnTraining2's ``f_beta``: ``(1 + b^2) sens spec / (b^2 spec + sens)``, spec = 1 - fpr
    (0 when both are 0). Source: ``calculate_selection_metric``, user_tools/nnTraining2/
    nnTrainer.py (OpenSeizureDatabase)."""
    spec, b2 = 1.0 - fpr, beta * beta
    denom = b2 * spec + sensitivity
    return 0.0 if denom == 0 else (1 + b2) * sensitivity * spec / denom


def dual_improves(sens: float, fpr: float, best: tuple[float, float] | None, meets: bool,
                  far_reduction: float, sens_tolerance: float) -> bool:
    """nnTraining2's ``dual_improvement`` rule: does an epoch with (`sens`, `fpr`) replace the
    last kept epoch `best` = (sensitivity, FPR) (None: nothing kept yet, i.e. sensitivity 0
    and FPR infinite)? `meets`: the epoch meets min_sensitivity / max_fpr; if not, only "both
    improved" counts (the fallback). Source: the checkpoint loop of nnTrainer.py."""
    best_sens, best_far = best if best is not None else (0.0, math.inf)
    if sens > best_sens and fpr < best_far:
        return True
    if not meets:
        return False
    reduction = (best_far - fpr) / best_far if 0 < best_far < math.inf else 0.0
    return reduction > far_reduction and abs(sens - best_sens) <= sens_tolerance


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
        # dual_improvement: (sensitivity, FPR) of the last kept epoch, whether any epoch met the
        # criteria, and whether the kept one did
        self._dual: dict[str, Any] = {"best": None, "met": False, "kept_meets": False}

    def _dual_keeps(self, row: dict[str, Any], meets: bool) -> bool:
        sens, fpr, loss = row.get("val_sensitivity"), row.get("val_fpr"), row.get("val_loss")
        if sens is None or fpr is None or loss is None or math.isnan(loss):
            return False
        if not meets and self._dual["met"]:
            return False
        self._dual["met"] = self._dual["met"] or meets
        best = self._dual["best"]
        if not dual_improves(sens, fpr, None if best is None else tuple(best), meets,
                             self.cfg.dual_far_reduction, self.cfg.dual_sensitivity_tolerance):
            return False
        self._dual.update(best=(sens, fpr), kept_meets=meets)
        return True

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
        if self.cfg.checkpoint_metric == "dual_improvement":
            keep = self._dual_keeps(row, meets=score is not None)
        else:
            keep = score is not None and (self._best is None or score > self._best[0])
        if keep:
            self._best = (score or (), row["epoch"], _copy_state(module))
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
        return {"history": self.history, "best": self._best, "best_loss": self._best_loss,
                "dual": self._dual}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
        self._best = _tuple(state_dict["best"])
        self._best_loss = _tuple(state_dict["best_loss"])
        self._dual = dict(state_dict.get("dual") or self._dual)
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
            warning = None
            if self.cfg.checkpoint_metric == "dual_improvement" and not self._dual["kept_meets"]:
                warning = (f"no epoch met checkpoint_metric='dual_improvement' (sensitivity >= "
                           f"{self.cfg.min_sensitivity}"
                           + (f", FPR <= {self.cfg.max_fpr}" if self.cfg.max_fpr is not None
                              else "")
                           + ", both classes predicted) when it was kept; using the epoch kept "
                           "by nnTraining2's fallback (sensitivity and FPR both improved)")
                warnings.warn(warning, stacklevel=2)
            return self._flag_zero(Choice(self._best[1], self.cfg.checkpoint_metric, warning,
                                          self._best[2]))
        if self._best_loss is None:
            raise RuntimeError("no validation pass completed; nothing to choose a checkpoint "
                               "from")
        why = (f"no epoch met checkpoint_metric={self.cfg.checkpoint_metric!r} (sensitivity >= "
               f"{self.cfg.min_sensitivity}"
               + (f", FPR <= {self.cfg.max_fpr}" if self.cfg.max_fpr is not None else "")
               + ", both classes predicted)")
        warning = f"{why}; using the epoch with the lowest validation loss instead"
        warnings.warn(warning, stacklevel=2)
        return self._flag_zero(Choice(self._best_loss[1], "val_loss", warning,
                                      self._best_loss[2]))

    def _flag_zero(self, choice: Choice) -> Choice:
        """`choice` with a warning added when its epoch found none of the validation seizure
        windows (validation sensitivity 0): such weights may detect no seizures at all."""
        row = next((r for r in self.history if r.get("epoch") == choice.epoch), None)
        if row is None or row.get("val_sensitivity") != 0:
            return choice
        zero = (f"the chosen epoch {choice.epoch} finds none of the validation seizure windows "
                "(validation sensitivity 0): the model may detect no seizures")
        warnings.warn(zero, stacklevel=3)
        return Choice(choice.epoch, choice.criterion,
                      f"{choice.warning}; {zero}" if choice.warning else zero,
                      choice.state_dict)


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
