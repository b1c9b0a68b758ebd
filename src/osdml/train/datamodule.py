"""The LightningDataModule: batches of windows gathered straight from the sample streams.

A batch is built in one vectorised gather (``WindowSet.batch``), not window by window; windows
stay views of the streams until then, so memory does not grow with the number of windows.
Training batches are drawn with a seeded generator: uniformly, or class-balanced (each window
weighted by 1 / its class count, with replacement).

Under DDP every process draws the same seeded (seed, epoch) batches and takes its share of each
(``batch[rank::world]``), so the windows of a step are the same as in one process; validation
batches are dealt out in turn (batch i to rank i mod world) and the module gathers the logits
of the whole validation part before computing any metric.
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
    """Map a list of window indices to ``(x, y, idx)``: x (n, C, L) float32 in g, y (n,) int64,
    idx (n,) int64 (the windows' positions, to put gathered validation outputs in order)."""

    def __init__(self, windows: WindowSet | Windows):
        self.windows = windows
        self.labels = np.asarray(windows.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        return (torch.from_numpy(self.windows.batch(idx)),
                torch.from_numpy(self.labels[idx]), torch.from_numpy(idx))


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
    rank, world : int, default 0 and 1
        This process's share under DDP: every process draws the same batches and yields
        ``batch[rank::world]`` of each.
    """

    def __init__(self, labels: np.ndarray, per_epoch: int, batch_size: int, balanced: bool,
                 seed: int, epoch=None, rank: int = 0, world: int = 1):
        self.labels, self.per_epoch, self.batch_size = labels, per_epoch, batch_size
        self.balanced, self.seed, self.epoch = balanced, seed, 0
        self.rank, self.world = rank, world
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
        batches = BatchSampler(self._sampler(), self.batch_size, self.drop_last)
        if self.world == 1:
            return iter(batches)
        return (b[self.rank::self.world] for b in batches)

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
    num_workers : int, default=0
        Worker processes that gather training batches (the sampler stays in the training
        process, so the batches are the same with any number of workers).
    pin_memory : bool, default=False
        Gather into page-locked memory, so copies to a CUDA GPU run asynchronously.
    """

    def __init__(self, train: WindowSet, val: Windows | WindowSet, batch_size: int,
                 balanced: bool, seed: int, windows_per_epoch: int | None = None,
                 num_workers: int = 0, pin_memory: bool = False):
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.balanced, self.seed = batch_size, balanced, seed
        self.per_epoch = windows_per_epoch or len(train)
        self.num_workers, self.pin_memory = num_workers, pin_memory

    def __setstate__(self, state):
        # unpickled in a process spawned for DDP: quiet Lightning there as in the parent
        self.__dict__.update(state)
        from osdml.train.fit import quiet_lightning_process

        quiet_lightning_process()

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, dataset, sampler) -> DataLoader:
        return DataLoader(dataset, batch_size=None, sampler=sampler,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def steps_per_epoch(self) -> int:
        n = self.per_epoch
        return max(1, n // self.batch_size) if n >= self.batch_size else 1

    def train_dataloader(self) -> DataLoader:
        """Training windows, shuffled (or class-balanced), seeded per epoch."""
        rank, world = self._rank_world()
        sampler = EpochBatches(np.asarray(self.train.labels), self.per_epoch, self.batch_size,
                               self.balanced, self.seed, epoch=self._current_epoch, rank=rank,
                               world=world)
        return self._loader(WindowBatches(self.train), sampler)

    def _current_epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.current_epoch if trainer is not None else 0

    def val_dataloader(self) -> DataLoader:
        """Validation windows, in order (under DDP, batch i goes to rank i mod world)."""
        rank, world = self._rank_world()
        # every rank gets at least one batch (each must join the gather at the end)
        size = min(self.batch_size, max(1, -(-len(self.val) // world)))
        batches = list(BatchSampler(SequentialSampler(range(len(self.val))), size, False))
        # validation runs in the training process: workers would only add start-up time
        return DataLoader(WindowBatches(self.val), batch_size=None,
                          sampler=batches[rank::world], pin_memory=self.pin_memory)
