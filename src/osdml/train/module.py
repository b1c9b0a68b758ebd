"""The LightningModule: step logic, validation metrics and the optimiser with its schedule.

It holds the network (from ``create_model``), computes the cross-entropy of the logits (with
optional class weights), logs ``train_loss`` and ``val_loss``, and at the end of every
validation pass computes ``val_loss`` and the window metrics (``val_metrics``) over the whole
validation part: under DDP the logits of every rank are gathered first (never a per-rank
number), in the windows' order, so the numbers equal one process's. It neither writes files
nor prints; checkpoint choice and metric files are callbacks (``choice.py``).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from osdml.config import TrainConfig
from osdml.errors import TrainingDiverged
from osdml.evaluate.metrics import window_metrics


def lr_multiplier(step: int, total: int, warmup: int, cooldown: int, end_ratio: float,
                  start_ratio: float | None = None) -> float:
    """Learning-rate factor (of the peak) at optimisation `step` of `total`.

    Linear warm-up from ~0 (or from `start_ratio` at step 0, nnTraining2's ``lrStart /
    lrPeak``) to 1 over `warmup` steps, cosine decay from 1 to `end_ratio` until `cooldown`
    steps before the end, then linear cool-down from `end_ratio` to 0 (the three-phase schedule
    of Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406).
    """
    if step < warmup:
        if start_ratio is not None:
            return start_ratio + (1 - start_ratio) * step / warmup
        return (step + 1) / warmup
    main_end = max(warmup, total - cooldown)
    if step < main_end:
        t = (step - warmup) / max(1, main_end - warmup)
        return end_ratio + (1 - end_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return end_ratio * max(0.0, (total - step) / max(1, cooldown))


class SeizureClassifier(L.LightningModule):
    """Train `model` (windows (N, 1, L) float32 in g -> logits (N, classes)).

    Parameters
    ----------
    model : torch.nn.Module
    config : TrainConfig
    total_steps : int
        Optimisation steps of the whole run (epochs x batches), for the schedule.
    class_weights : torch.Tensor of shape (classes,), optional
        Cross-entropy weights.
    """

    def __init__(self, model: torch.nn.Module, config: TrainConfig, total_steps: int,
                 class_weights: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.cfg = config
        self.total_steps = max(1, total_steps)
        self.register_buffer("class_weights", class_weights, persistent=False)
        self._val_logits: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []
        self._val_index: list[torch.Tensor] = []
        self.threads: int | None = None  # CPU threads per process under CPU DDP
        self.val_metrics: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def setup(self, stage: str) -> None:
        # in each process spawned for CPU DDP: share the cores instead of oversubscribing them
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.trainer.accelerator.__class__.__name__ == "CPUAccelerator":
            from osdml.train.devices import keep_freed_memory

            keep_freed_memory()  # in whichever process trains: no page faults every step

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the random state at the end of the epoch (dropout draws), so a resumed run continues
        # with the same numbers as one that never stopped
        # stored as tensors and plain tuples, so the checkpoint loads with weights_only=True
        import random

        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint["osdml_rng"] = {
            "torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                      float(gauss))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        import random

        import numpy as np

        rng = checkpoint.get("osdml_rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            random.setstate(_tuples(rng["python"]))
            kind, keys, pos, has_gauss, gauss = rng["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self(x), y, weight=self.class_weights)
        # sync_dist: under DDP the epoch's mean is taken over every rank (once, at epoch end)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(y), sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._val_logits.append(self(batch[0]).detach().float())
        self._val_labels.append(batch[1].detach())
        self._val_index.append(batch[2].detach())

    def _gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (n, classes) float32, labels (n,) int64) of the whole validation part on
        the CPU, in the windows' order: this rank's, or every rank's under DDP."""
        logits = torch.cat(self._val_logits)
        labels = torch.cat(self._val_labels)
        index = torch.cat(self._val_index)
        self._val_logits, self._val_labels, self._val_index = [], [], []
        if self._trainer is not None and self.trainer.world_size > 1:
            # all_gather needs equal shapes: pad to the longest share, then drop the padding
            n = torch.tensor([len(index)], device=logits.device)
            sizes = self.all_gather(n).reshape(-1).tolist()
            longest = max(sizes)

            def pad(t):
                return F.pad(t, (0, 0) * (t.dim() - 1) + (0, longest - len(t)))

            parts = [self.all_gather(pad(t)) for t in (logits, labels, index)]
            logits, labels, index = (torch.cat([g[r, :k] for r, k in enumerate(sizes)])
                                     for g in parts)
        order = torch.argsort(index.cpu())
        return logits.cpu()[order], labels.cpu()[order]

    def on_validation_epoch_end(self) -> None:
        if not self._val_logits:
            return
        logits, labels_t = self._gathered()
        weight = None if self.class_weights is None else self.class_weights.cpu()
        loss = F.cross_entropy(logits, labels_t, weight=weight)
        # the same number on every rank: no reduction needed
        self.log("val_loss", loss.to(self.device), prog_bar=True, sync_dist=True)
        labels = labels_t.numpy()
        if not torch.isfinite(logits).all():
            raise TrainingDiverged(f"training diverged in epoch {self.current_epoch + 1}: the "
                                   "model's outputs are not finite; lower train.lr_peak or "
                                   "train.weight_decay")
        p = torch.softmax(logits, dim=1)[:, 1].numpy()
        self.val_metrics = window_metrics(labels, p, self.cfg.threshold, self.cfg.f_beta)
        for key in ("sensitivity", "fpr"):
            value = self.val_metrics[key]
            self.log(f"val_{key}", np.nan if value is None else float(value), prog_bar=True,
                     sync_dist=True)

    def configure_optimizers(self):
        c = self.cfg
        lr = c.lr_start if c.lr_start is not None and c.schedule != "warmup_cosine" else c.lr_peak
        opt = torch.optim.AdamW(self.parameters(), lr=lr, betas=tuple(c.betas),
                                weight_decay=c.weight_decay)
        if c.schedule == "constant":
            return opt
        if c.schedule == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=c.plateau_factor, patience=c.plateau_patience,
                min_lr=c.lr_min)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss",
                                                       "interval": "epoch"}}
        n = self.total_steps
        warmup = c.warmup_steps if c.warmup_steps is not None else max(1, n // 20)
        cooldown = c.cooldown_steps if c.cooldown_steps is not None else max(1, n // 20)
        end_ratio = c.lr_end / c.lr_peak
        start_ratio = None if c.lr_start is None else c.lr_start / c.lr_peak

        def factor(step: int) -> float:
            return lr_multiplier(step, n, warmup, cooldown, end_ratio, start_ratio)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _tuples(v):
    """random.setstate needs tuples where a round trip may give lists."""
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v
