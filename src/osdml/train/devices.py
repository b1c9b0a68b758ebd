"""Where a model trains: accelerator, devices, precision and strategy, resolved and checked.

``resolve_placement(config.train)`` turns the ``[train]`` keys (``accelerator``, ``devices``,
``precision``, ``strategy``) into what the Lightning trainer gets, and refuses, in one line,
what this machine cannot do (a CUDA GPU on a machine without one, more GPUs than it has,
16-bit floats on the CPU).

Precision ``auto`` is the fastest setting that keeps training stable on each device:

- CUDA: ``bf16-mixed`` when the GPU has bfloat16 (Ampere and later: A100, H100, H200, RTX 30xx
  and later), else ``16-mixed`` (float16 with loss scaling);
- CPU and Apple MPS: ``32-true``. bf16 autocast is faster on CPUs with native bf16 (AVX512-BF16,
  AMX; measured by ``benchmarks/train_throughput.py``) but it changes the numbers; ask for it
  with ``precision = "bf16-mixed"``.

Weights and the exported model stay float32 whatever the training precision.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from osdml.config import TrainConfig
from osdml.errors import InputError


@dataclass(frozen=True)
class Placement:
    """The resolved training placement.

    Attributes
    ----------
    accelerator : {"cpu", "cuda", "mps"}
    devices : int
        Processes (one per GPU, or CPU processes) that train one model together.
    precision : {"32-true", "bf16-mixed", "16-mixed"}
    strategy : {"single", "ddp"}
        ``ddp``: Lightning's distributed data parallel, one spawned process per device (gloo on
        the CPU, NCCL on CUDA).
    """

    accelerator: str
    devices: int
    precision: str
    strategy: str

    @property
    def distributed(self) -> bool:
        return self.strategy == "ddp"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        what = {"cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple MPS"}[self.accelerator]
        n = f"{self.devices} x " if self.devices > 1 else ""
        how = ", DDP" if self.distributed else ""
        return f"{n}{what}, {self.precision}{how}"


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _bf16_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_bf16_supported())


def resolve_placement(cfg: TrainConfig) -> Placement:
    """Resolve ``accelerator``, ``devices``, ``precision`` and ``strategy`` of `cfg` on this
    machine.

    Returns
    -------
    Placement

    Raises
    ------
    InputError
        If the machine cannot do what `cfg` asks (the message names the key and what to set
        instead): ``cuda`` or ``mps`` where torch sees none, more CUDA devices than there are,
        several devices on MPS, ``16-mixed`` off CUDA, or a batch that does not divide evenly
        among the devices.
    """
    import torch

    acc = cfg.accelerator
    n_cuda = _cuda_count()
    if acc == "auto":
        acc = "cuda" if n_cuda else "mps" if _mps_available() else "cpu"
    if acc == "cuda":
        if not n_cuda:
            build = ("a CPU-only build" if torch.version.cuda is None
                     else f"built for CUDA {torch.version.cuda}, but no GPU or driver is visible")
            raise InputError(f"train.accelerator = 'cuda', but this torch {torch.__version__} is "
                             f"{build}; set accelerator = 'auto' or 'cpu'")
        if cfg.devices > n_cuda:
            raise InputError(f"train.devices = {cfg.devices}, but this machine has {n_cuda} "
                             f"CUDA GPU{'s' if n_cuda != 1 else ''}; set devices <= {n_cuda}")
    if acc == "mps":
        if not _mps_available():
            raise InputError("train.accelerator = 'mps', but torch sees no Apple MPS device "
                             "(macOS on Apple silicon only); set accelerator = 'auto' or 'cpu'")
        if cfg.devices > 1:
            raise InputError(f"train.devices = {cfg.devices}, but Apple MPS is one device; set "
                             "devices = 1")
    precision = cfg.precision
    if precision == "auto":
        precision = ("bf16-mixed" if _bf16_cuda() else "16-mixed") if acc == "cuda" else "32-true"
    if precision == "16-mixed" and acc != "cuda":
        raise InputError(f"train.precision = '16-mixed' needs a CUDA GPU (training on {acc}); "
                         "use 'bf16-mixed' or '32-true'")
    if precision == "bf16-mixed" and acc == "cuda" and not _bf16_cuda():
        raise InputError("train.precision = 'bf16-mixed', but this GPU has no bfloat16 (older "
                         "than Ampere); use '16-mixed' or '32-true'")
    distributed = cfg.devices > 1 or cfg.strategy == "ddp"
    if distributed and cfg.batch_size % cfg.devices:
        raise InputError(f"train.batch_size = {cfg.batch_size} does not divide among "
                         f"train.devices = {cfg.devices}; each device takes an equal share of "
                         "every batch")
    if distributed and cfg.batch_size // cfg.devices < 2:
        raise InputError(f"train.batch_size = {cfg.batch_size} leaves fewer than 2 windows per "
                         f"device (devices = {cfg.devices}); batch norm needs 2")
    return Placement(acc, cfg.devices, precision, "ddp" if distributed else "single")


def threads_per_process(devices: int) -> int:
    """CPU threads each of `devices` CPU training processes should use (cores shared out)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, devices))


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """On Linux with glibc, let ``malloc`` keep freed memory for reuse instead of handing every
    large block back to the kernel.

    By default glibc serves each allocation over its mmap threshold (32 MB at most) with a fresh
    mapping and unmaps it on free, so every training step on the CPU maps, page-faults and
    unmaps its activations again: about 300,000 page faults per DeepEpiCnn step at batch 512,
    and 20-45 % of the step time (measured: ``benchmarks/train_throughput.py``). This sets
    ``M_MMAP_MAX = 0`` (large blocks come from the heap) and ``M_TRIM_THRESHOLD`` to 2 GiB (freed
    memory stays for the next step), once per process. Numbers are unchanged; the process
    keeps up to 2 GiB of freed memory. Nothing is done elsewhere (macOS, musl).

    Returns
    -------
    bool
        Whether the settings are in force.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    import ctypes
    import platform
    import sys

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        _MALLOC_TUNED = bool(libc.mallopt(m_mmap_max, 0)) and bool(
            libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False
    return _MALLOC_TUNED
