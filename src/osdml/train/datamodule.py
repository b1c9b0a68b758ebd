"""The LightningDataModule: batches of windows gathered straight from the sample streams.

A batch is built in one vectorised gather (``WindowSet.batch``), not window by window; windows
stay views of the streams until then, so memory does not grow with the number of windows.
Training batches are drawn with a seeded generator: uniformly, or class-balanced (each window
weighted by 1 / its class count, with replacement).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    WeightedRandomSampler,
)

from osdml.data.windows import Windows, WindowSet


class WindowBatches(torch.utils.data.Dataset):
    """Map a list of window indices to ``(x, y)``: x (n, 1, L) float32 in g, y (n,) int64."""

    def __init__(self, windows: WindowSet | Windows):
        self.windows = windows
        self.labels = np.asarray(windows.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        return (torch.from_numpy(self.windows.batch(idx)),
                torch.from_numpy(self.labels[idx]))


class EpochBatches(torch.utils.data.Sampler):
    """Batches of training window indices, drawn anew every epoch.

    Each epoch's draw comes from a generator seeded with (seed, epoch), so the batches of an
    epoch do not depend on how many epochs this process ran before: a run resumed from a
    checkpoint sees the same batches as one that never stopped. The epoch is read from
    `epoch` at the start of each pass (the trainer's ``current_epoch``: Lightning does not
    call ``set_epoch`` for the first epoch after a resume).

    Parameters
    ----------
    labels : np.ndarray of shape (n_windows,), int
    per_epoch : int
        Windows drawn per epoch.
    batch_size : int
    balanced : bool
        Weight each window by 1 / its class count (with replacement); else uniform.
    seed : int
    epoch : callable, optional
        Returns the current epoch (0-based); default: the last ``set_epoch`` value.
    """

    def __init__(self, labels: np.ndarray, per_epoch: int, batch_size: int, balanced: bool,
                 seed: int, epoch=None):
        self.labels, self.per_epoch, self.batch_size = labels, per_epoch, batch_size
        self.balanced, self.seed, self.epoch = balanced, seed, 0
        self._epoch_of = epoch
        # drop a last partial batch: a batch of one cannot pass through batch norm in training
        self.drop_last = per_epoch >= batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _sampler(self):
        if self._epoch_of is not None:
            self.epoch = int(self._epoch_of())
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.balanced and len(set(self.labels.tolist())) > 1:
            counts = np.bincount(self.labels)
            weights = torch.from_numpy(1.0 / counts[self.labels])
            return WeightedRandomSampler(weights, self.per_epoch, replacement=True, generator=g)
        return RandomSampler(range(len(self.labels)), num_samples=self.per_epoch, generator=g)

    def __iter__(self):
        return iter(BatchSampler(self._sampler(), self.batch_size, self.drop_last))

    def __len__(self) -> int:
        n, b = self.per_epoch, self.batch_size
        return n // b if self.drop_last else -(-n // b)


class WindowDataModule(L.LightningDataModule):
    """Training and validation windows; the test part never comes here.

    Parameters
    ----------
    train : WindowSet
        Training windows (originals and augmented copies).
    val : Windows
        Validation windows (checkpoint choice, early stopping).
    batch_size : int
    balanced : bool
        Class-balanced sampling of training windows.
    seed : int
        Seed of the training sampler.
    windows_per_epoch : int, optional
        Windows drawn per epoch (default: as many as there are).
    """

    def __init__(self, train: WindowSet, val: Windows | WindowSet, batch_size: int,
                 balanced: bool, seed: int, windows_per_epoch: int | None = None):
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.balanced, self.seed = batch_size, balanced, seed
        self.per_epoch = windows_per_epoch or len(train)

    def steps_per_epoch(self) -> int:
        n = self.per_epoch
        return max(1, n // self.batch_size) if n >= self.batch_size else 1

    def train_dataloader(self) -> DataLoader:
        """Training windows, shuffled (or class-balanced), seeded per epoch."""
        sampler = EpochBatches(np.asarray(self.train.labels), self.per_epoch, self.batch_size,
                               self.balanced, self.seed, epoch=self._current_epoch)
        return DataLoader(WindowBatches(self.train), batch_size=None, num_workers=0,
                          sampler=sampler)

    def _current_epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.current_epoch if trainer is not None else 0

    def val_dataloader(self) -> DataLoader:
        """Validation windows, in order."""
        sampler = BatchSampler(SequentialSampler(range(len(self.val))), self.batch_size, False)
        return DataLoader(WindowBatches(self.val), batch_size=None, num_workers=0,
                          sampler=sampler)
