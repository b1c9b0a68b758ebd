"""Train one model on one split: ``fit(config, train, val) -> FitResult``.

Read top to bottom: placement -> seeds -> model -> data module -> module and schedule ->
callbacks -> Lightning trainer -> chosen weights. Same data, same configuration and the same
seed on the CPU give the same weights (``deterministic=True``, seeded sampler; the sampler stays
in the training process whatever ``num_workers``). On a GPU cuDNN may choose
non-deterministic kernels: runs agree closely, not bit for bit.

Several devices (``[train] devices``, ``strategy = "ddp"``) train one model with Lightning's
DDP, one spawned process per device: each takes its share of the same seeded batches, the
validation logits of all of them are gathered before any metric or checkpoint choice, and only
rank 0 writes ``metrics.csv`` and ``last.ckpt``; this process then reads the outcome back from
``last.ckpt``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from osdml.config import RunConfig
from osdml.data.windows import Windows, WindowSet
from osdml.errors import InputError
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
    placement: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen(self) -> dict[str, Any]:
        """The validation numbers of the chosen epoch."""
        return next(r for r in self.history if r["epoch"] == self.chosen_epoch)


CHECKPOINT = "last.ckpt"


def fit(config: RunConfig, train: WindowSet, val: Windows | WindowSet, *,
        out_dir: Path | None = None, progress: bool = True, resume: bool = False
        ) -> FitResult:
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
        Where ``metrics.csv`` is written after every epoch, and ``last.ckpt``: the state at
        the end of the last completed epoch (weights, optimiser, schedule, early stopping,
        checkpoint choice, random state), written atomically.
    progress : bool, default=True
        Show Lightning's progress bar (on stderr).
    resume : bool, default=False
        Continue from ``out_dir/last.ckpt`` when it exists: the result is the same as a run
        that never stopped (same data, configuration and seed).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        If `train` or `val` is empty.
    InputError
        If this machine cannot train as ``[train]`` asks (``resolve_placement``), or a
        checkpoint to resume from is not one.
    TrainingDiverged
        If the validation outputs stop being finite.
    """
    from osdml.train.devices import resolve_placement, threads_per_process

    if not len(train) or not len(val):
        raise ValueError(f"cannot train on {len(train)} training and {len(val)} validation "
                         "windows")
    cfg = config.train
    place = resolve_placement(cfg)
    # ---------------------------------------------------------------- seeds and model
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    arch_kwargs = {"input_length": train.window_samples,
                   "num_classes": max(config.data.selection.labels.values()) + 1,
                   **config.model.arch_options(config.data.reader.sample_rate_hz)}
    if getattr(train, "channels", 1) != 1:  # three-axis input ([data.windows] input = "xyz")
        arch_kwargs["in_channels"] = train.channels
    model = create_model(config.model.arch, **arch_kwargs)
    # ---------------------------------------------------------------- data and module
    data = WindowDataModule(train, val, cfg.batch_size, cfg.balanced_sampling, cfg.seed,
                            cfg.windows_per_epoch, num_workers=cfg.num_workers,
                            pin_memory=place.accelerator == "cuda")
    weights = None
    if cfg.class_weights == "balanced":
        counts = np.bincount(np.asarray(train.labels), minlength=arch_kwargs["num_classes"])
        weights = torch.tensor(len(train.labels) / (len(counts) * np.maximum(counts, 1)),
                               dtype=torch.float32)
    elif isinstance(cfg.class_weights, list):
        if len(cfg.class_weights) != arch_kwargs["num_classes"]:
            raise InputError(f"train.class_weights has {len(cfg.class_weights)} weights for "
                             f"{arch_kwargs['num_classes']} classes")
        weights = torch.tensor(cfg.class_weights, dtype=torch.float32)
    total_steps = data.steps_per_epoch() * cfg.max_epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    ramp = (cfg.warmup_steps or 0) + (cfg.cooldown_steps or 0)
    if cfg.schedule == "warmup_cosine" and ramp > total_steps:  # never run near lr 0 silently
        raise InputError(f"train.warmup_steps + train.cooldown_steps = {ramp} exceed the "
                         f"{total_steps} steps this run makes ({cfg.max_epochs} epochs of "
                         f"{data.steps_per_epoch()} steps"
                         f"{f', max_steps {cfg.max_steps}' if cfg.max_steps else ''}): the "
                         "learning rate would never reach lr_peak; lower them, or raise "
                         "max_epochs or windows_per_epoch")
    module = SeizureClassifier(model, cfg, total_steps, weights)
    if place.distributed and place.accelerator == "cpu":
        module.threads = threads_per_process(place.devices)
    # ---------------------------------------------------------------- callbacks and trainer
    choice_cb = CheckpointChoice(cfg, out_dir / "metrics.csv" if out_dir else None)
    callbacks: list[L.Callback] = [choice_cb]
    if cfg.early_stopping_patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping(
            "val_loss", patience=cfg.early_stopping_patience, mode="min"))
    with tempfile.TemporaryDirectory() as scratch, _quiet_lightning():
        # under DDP the outcome comes back through the checkpoint, so there always is one
        ckpt = (out_dir / CHECKPOINT if out_dir else
                Path(scratch) / CHECKPOINT if place.distributed else None)
        resume_from = ckpt if resume and ckpt is not None and ckpt.is_file() else None
        if ckpt is not None:
            callbacks.append(EpochCheckpoint(ckpt, resumed=resume_from is not None))
        state = _load_checkpoint(resume_from) if resume_from is not None else None
        if state is not None and state.get("osdml_finished"):
            # training had finished (killed while exporting): restore its outcome, train nothing
            return _restore(model, module, choice_cb, state, arch_kwargs, place)
        trainer = L.Trainer(
            max_epochs=cfg.max_epochs, max_steps=-1 if cfg.max_steps is None else cfg.max_steps,
            accelerator=place.accelerator, devices=place.devices,
            precision=place.precision, strategy=_strategy(place),
            use_distributed_sampler=False,  # the samplers share batches out themselves
            deterministic=place.accelerator == "cpu",
            logger=False, enable_checkpointing=ckpt is not None, enable_model_summary=False,
            num_sanity_val_steps=0, enable_progress_bar=progress, callbacks=callbacks,
            default_root_dir=scratch)
        sigint = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit(module, datamodule=data,
                        ckpt_path=None if resume_from is None else str(resume_from))
        except SystemExit:
            # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1): report it as
            # the interruption it is
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
        except Exception as e:
            if place.distributed:
                _raise_from_rank(e)
            raise
        finally:  # Lightning leaves Ctrl-C ignored after an interruption; give it back
            if sigint is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, sigint)
        if place.distributed:
            # the processes that trained are gone; their outcome is in the final checkpoint
            state = _load_checkpoint(ckpt)
            if not state.get("osdml_finished"):
                raise KeyboardInterrupt  # stopped before the end (a rank was interrupted)
            return _restore(model, module, choice_cb, state, arch_kwargs, place)
    return _result(model, choice_cb, arch_kwargs, place)


def _strategy(place):
    if not place.distributed:
        return "auto"
    from lightning.pytorch.strategies import DDPStrategy

    # spawned processes: works from any entry point (CLI, notebook, Ray task) on Linux and
    # macOS, and never forks a process that already holds CUDA or OpenMP threads
    return DDPStrategy(start_method="spawn",
                       process_group_backend="nccl" if place.accelerator == "cuda" else "gloo")


def _restore(model, module, choice_cb: CheckpointChoice, state: dict[str, Any], arch_kwargs,
             place) -> FitResult:
    module.load_state_dict(state["state_dict"])
    choice_cb.load_state_dict(state["callbacks"][choice_cb.state_key])
    return _result(model, choice_cb, arch_kwargs, place)


def _result(model, choice_cb: CheckpointChoice, arch_kwargs, place) -> FitResult:
    choice: Choice = choice_cb.choice()
    model.load_state_dict(choice.state_dict)
    return FitResult(model.eval().cpu(), choice.epoch, choice.criterion, choice.warning,
                     choice_cb.history, len(choice_cb.history), arch_kwargs, place.to_dict())


def _raise_from_rank(error: Exception) -> None:
    """Raise the osdml error a spawned DDP process raised as itself (one line to the user),
    not as the traceback text torch.multiprocessing wraps it in."""
    from osdml import errors

    text = str(error).strip().splitlines()
    name, _, message = (text[-1] if text else "").partition(": ")
    kind = getattr(errors, name.removeprefix("osdml.errors."), None)
    if name.startswith("osdml.errors.") and isinstance(kind, type) and issubclass(
            kind, errors.OsdmlError):
        raise kind(message) from None


class EpochCheckpoint(L.pytorch.callbacks.Checkpoint):
    """Save the whole training state to `path` after every completed epoch, and once more
    marked finished when training ends; each save goes to a temporary name and is renamed, so
    `path` always holds a complete checkpoint.

    The save happens as the next epoch starts: Lightning then counts the previous epoch as
    complete, so a resume starts the next epoch afresh (a checkpoint taken in
    ``on_train_epoch_end`` is resumed by re-running that epoch on the next epoch's number).
    """

    def __init__(self, path: Path, resumed: bool = False):
        self.path = Path(path)
        self.finished = False
        # after a resume the file already holds the state this first epoch starts from; saving
        # again would record the random state after the data loader's seed draw, which a
        # resumed process makes before this hook (a second resume would then drift)
        self._skip_first = resumed

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._skip_first:
            self._skip_first = False
            return
        if trainer.current_epoch > 0:
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.interrupted:
            self.finished = True
            self._save(trainer)

    def on_save_checkpoint(self, trainer, module, checkpoint: dict[str, Any]) -> None:
        checkpoint["osdml_finished"] = self.finished
        if not self.finished:
            _epoch_boundary(checkpoint.get("loops", {}).get("fit_loop"), trainer.current_epoch)

    def _save(self, trainer: L.Trainer) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)


def _not_a_checkpoint(path: Path, error: Exception) -> str:
    """What is wrong with a file that should be a training checkpoint, in a few words."""
    import pickle

    from osdml.export import sniff as sn

    if isinstance(error, pickle.UnpicklingError) and "Weights only" in str(error):
        return ("it holds pickled Python objects besides tensors (loading them could run "
                "code), so it was not loaded")
    if isinstance(error, ValueError) and str(error) == "it holds no training state":
        return str(error)
    try:
        found = sn.sniff(path)
        if found.kind not in (sn.CHECKPOINT, sn.TORCHSCRIPT):
            return f"it is {found.description}"
    except Exception as e:  # sniff's own one-line verdict (empty, truncated, HTML, ...)
        return str(e).split(": ", 1)[-1]
    return "a damaged checkpoint (truncated or overwritten?)"


def _epoch_boundary(fit_loop: dict[str, Any] | None, epochs_done: int) -> None:
    """Make the saved loop state say: `epochs_done` epochs complete, nothing of the next one
    started (taken as the next epoch starts, Lightning's state has the new epoch counted as
    started and the last validation pass as current, so a resume would skip validation)."""
    if not fit_loop:
        return
    for part in ("total", "current"):
        progress = fit_loop["epoch_progress"][part]
        for key in progress:
            progress[key] = epochs_done
    for name in ("epoch_loop.batch_progress", "epoch_loop.val_loop.batch_progress"):
        if name in fit_loop:
            current = fit_loop[name]["current"]
            for key in current:
                current[key] = 0
            fit_loop[name]["is_last_batch"] = False
    sched = fit_loop.get("epoch_loop.scheduler_progress", {}).get("current")
    for key in sched or {}:
        sched[key] = 0


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The training state saved in `path` (``EpochCheckpoint``). It is loaded with
    ``weights_only=True`` (tensors and plain data only: a pickle that would run code is
    refused, never executed).

    Raises
    ------
    InputError
        If `path` is not a checkpoint this version of osdml wrote.
    """
    from osdml.errors import InputError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "state_dict" not in state:
            raise ValueError("it holds no training state")
    except Exception as e:
        raise InputError(f"cannot resume from {path}: {_not_a_checkpoint(path, e)}; delete it "
                         "to train from the first epoch") from None
    return state


_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


def _hide_lightning_advice() -> None:
    """Warning filters for Lightning's advice on worker processes and logging intervals:
    windows are gathered in the training process on purpose (deterministic, no copy)."""
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def quiet_lightning_process() -> None:
    """In a process spawned for DDP (for good: the process ends with training): what
    ``_quiet_lightning`` hides in the calling process, and the deprecation warnings of torch
    and Lightning that pytest and the CLI filter there."""
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _hide_lightning_advice()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


@contextlib.contextmanager
def _quiet_lightning():
    """Hide Lightning's start-up chatter (accelerator info, tips) and its advice on worker
    processes while training, then restore the loggers and warning filters."""
    loggers = [logging.getLogger(n) for n in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            _hide_lightning_advice()
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
