"""Train one model on one split: ``fit(config, train, val) -> FitResult``.

Read top to bottom: seeds -> model -> data module -> module and schedule -> callbacks ->
Lightning trainer -> chosen weights. Same data, same configuration and the same seed on the CPU
give the same weights (``deterministic=True``, seeded sampler, no worker processes).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from osdml.config import RunConfig
from osdml.data.windows import Windows, WindowSet
from osdml.models import create_model
from osdml.train.choice import CheckpointChoice, Choice
from osdml.train.datamodule import WindowDataModule
from osdml.train.module import SeizureClassifier


@dataclass
class FitResult:
    """The trained model (chosen weights, eval mode) and how it was chosen.

    ``history`` has one dict per epoch (the rows of ``metrics.csv``); epochs count from 1;
    ``criterion`` is the one that chose the epoch (``val_loss`` after a fallback, with
    ``warning`` saying why).
    """

    model: torch.nn.Module
    chosen_epoch: int
    criterion: str
    warning: str | None
    history: list[dict[str, Any]]
    epochs_run: int
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen(self) -> dict[str, Any]:
        """The validation numbers of the chosen epoch."""
        return next(r for r in self.history if r["epoch"] == self.chosen_epoch)


def fit(config: RunConfig, train: WindowSet, val: Windows | WindowSet, *,
        out_dir: Path | None = None, progress: bool = True) -> FitResult:
    """Train ``config.model`` on `train`, choosing the checkpoint on `val`.

    Parameters
    ----------
    config : RunConfig
        ``model`` and ``train`` sections are used.
    train : WindowSet
        Training windows (with augmented copies); labels 0/1.
    val : Windows or WindowSet
        Validation windows: checkpoint choice and early stopping. Must hold both classes
        for the metric criteria to apply.
    out_dir : Path, optional
        Where ``metrics.csv`` is written after every epoch.
    progress : bool, default=True
        Show Lightning's progress bar (on stderr).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        If `train` or `val` is empty.
    """
    if not len(train) or not len(val):
        raise ValueError(f"cannot train on {len(train)} training and {len(val)} validation "
                         "windows")
    cfg = config.train
    # ---------------------------------------------------------------- seeds and model
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    arch_kwargs = {"input_length": train.window_samples,
                   "num_classes": max(config.data.selection.labels.values()) + 1,
                   "conv_dropout": config.model.conv_dropout,
                   "dense_dropout": config.model.dense_dropout}
    model = create_model(config.model.arch, **arch_kwargs)
    # ---------------------------------------------------------------- data and module
    data = WindowDataModule(train, val, cfg.batch_size, cfg.balanced_sampling, cfg.seed,
                            cfg.windows_per_epoch)
    weights = None
    if cfg.class_weights == "balanced":
        counts = np.bincount(np.asarray(train.labels), minlength=arch_kwargs["num_classes"])
        weights = torch.tensor(len(train.labels) / (len(counts) * np.maximum(counts, 1)),
                               dtype=torch.float32)
    module = SeizureClassifier(model, cfg, data.steps_per_epoch() * cfg.max_epochs, weights)
    # ---------------------------------------------------------------- callbacks and trainer
    choice_cb = CheckpointChoice(cfg, out_dir / "metrics.csv" if out_dir else None)
    callbacks: list[L.Callback] = [choice_cb]
    if cfg.early_stopping_patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping(
            "val_loss", patience=cfg.early_stopping_patience, mode="min"))
    with tempfile.TemporaryDirectory() as scratch, _quiet_lightning():
        trainer = L.Trainer(
            max_epochs=cfg.max_epochs, accelerator="cpu", devices=1, deterministic=True,
            logger=False, enable_checkpointing=False, enable_model_summary=False,
            num_sanity_val_steps=0, enable_progress_bar=progress, callbacks=callbacks,
            default_root_dir=scratch)
        try:
            trainer.fit(module, datamodule=data)
        except SystemExit:
            # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1): report it as
            # the interruption it is
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
    # ---------------------------------------------------------------- chosen weights
    choice: Choice = choice_cb.choice()
    model.load_state_dict(choice.state_dict)
    return FitResult(model.eval(), choice.epoch, choice.criterion, choice.warning,
                     choice_cb.history, len(choice_cb.history), arch_kwargs)


@contextlib.contextmanager
def _quiet_lightning():
    """Hide Lightning's start-up chatter (accelerator info, tips) and its advice on worker
    processes: windows are gathered in the main process on purpose (deterministic, no copy)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric",
                                              "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
