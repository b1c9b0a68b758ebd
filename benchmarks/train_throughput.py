"""Training throughput of DeepEpiCnn: windows/s of one optimisation step after another.

Batch 512 of (N, 1, 750) float32 windows, 2 classes, AdamW, cross-entropy, all on the same
windows: the demo's synthetic OSDB data (``osdml.data.synthetic``, as ``osdml demo`` writes it),
read, split and windowed the way ``osdml train`` does (``pipeline.split_windows``: the training
part with its augmented copies), batches drawn class-balanced as ``[train]`` does by default.
Only steady-state steps are timed: the first ``--warmup-steps`` steps (allocator warm-up,
compilation, cuDNN autotuning) and everything before them are left out. windows/s is the batch
over the median step on the CPU (``--stat min``: the fastest step, for a machine shared with
other work; every step's time is in the JSON) and over the mean step on a GPU.

On the CPU:

- a bare torch loop in fp32, windows gathered from a tensor in memory (the reference);
- the same with ``torch.autocast('cpu', dtype=torch.bfloat16)``: by default only where the CPU
  has native bf16 (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo; elsewhere bf16 is emulated
  and many times slower), ``--cpu-bf16 on`` to measure it anyway;
- the bare loop on ``torch.compile(model)``, in a child process limited to
  ``--compile-timeout`` seconds (cold-cache compile time reported; a failure in one line);
- with glibc, the bare fp32 loop in a child process whose malloc keeps freed memory
  (``GLIBC_TUNABLES`` mmap_threshold 4 GiB, trim_threshold 16 GiB): by default every
  activation over 32 MB is a fresh mmap, so each step page-faults and zeroes its activations
  again (the ``page faults/step`` column; system CPU time per step is in the JSON). How many
  depends on the heap's history, so loops run one after another in one process fault
  differently: ``--malloc tuned`` runs every loop with those settings, for a fair comparison.

On a CUDA GPU: the bare loop in fp32 and with bf16 autocast, with the windows already on the GPU
and fed from pinned host memory (double-buffered, ``non_blocking`` copies), and compiled (bf16,
windows on the GPU). Goal (issue): at least 100,000 windows/s on one H200.

Everywhere: osdml's own Lightning loop (``osdml.train.fit.fit``, one epoch of
``warmup + steps`` batches, ``early_stopping_patience = 0``) at ``32-true`` and ``bf16-mixed``
through ``[train] accelerator / precision``, timed by a callback between
``on_train_batch_end`` events; its data-wait share is the time from one
``on_train_batch_end`` to the next ``on_train_batch_start`` (fetching and gathering the batch,
moving it to the device, Lightning's bookkeeping) over the whole step (on a GPU this is host
time, hidden behind the GPU's queue unless the GPU runs dry). Goal: within 10 % of the bare
loop at the same precision (windows in memory / on the GPU).

With ``--upstream PATH`` (a checkout of OpenSeizureDetector/OpenSeizureDatabase), upstream
nnTraining2's PyTorch training loop on the same windows: its own model class
(``user_tools/nnTraining2/deepEpiCnnModel_torch.py``, imported from the checkout) and its
data loading and step (``nnTrainer.py`` ``trainModel_pytorch``: ``TensorDataset`` of
(N, 750, 1) windows, ``WeightedRandomSampler`` + ``DataLoader(batch_size, drop_last=True)``,
AdamW, ``CrossEntropyLoss``, the three-phase ``LambdaLR`` stepped every batch, ``loss.item()``
and the accuracy count every batch), reproduced here because ``trainModel_pytorch`` reads its
own CSV files and validates and saves every epoch (it cannot time steps alone). Its
between-epoch validation is not timed. Goal: osdml's loop at least 2x upstream's on the CPU.

Fraction of peak: a training step taken as 3 x 2 x MACs per window (forward, and backward at
twice the forward; MACs of ``osdml.models.cost``), against a large matmul measured in the same
run on the same device (fp32, and bf16; on a GPU fp32 rows use the TF32 matmul peak when cuDNN
may use TF32 for convolutions, as it does by default).

    .venv/bin/python benchmarks/train_throughput.py --markdown --upstream /tmp/upstream

A full default run on a 2-core CPU takes 3 to 5 minutes (a minute of it compiling).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"gpu_windows_per_s": 100_000, "lightning_vs_bare": 0.90, "osdml_vs_upstream_cpu": 2.0}
DEFAULT_STEPS = {"cpu": (1, 8), "cuda": (20, 200)}  # (warm-up steps, timed steps)
UPSTREAM_LOOP = ("user_tools/nnTraining2/nnTrainer.py trainModel_pytorch (L885): data L942-L972, "
                 "optimiser and loss L977-L989, LambdaLR L1004-L1034, step loop L1085-L1110 "
                 "(OpenSeizureDatabase e81645926a93)")
# nnTrainer.py imports these (directly or through libosd.osdDbConnection / nnTester)
UPSTREAM_IMPORTS = ("sklearn", "matplotlib", "pandas", "dateutil", "jsbeautifier")
# where UPSTREAM_LOOP's line numbers point, to tell when a checkout has moved them
UPSTREAM_ANCHORS = {885: "def trainModel_pytorch(", 948: "train_dataset = TensorDataset(",
                    1086: "for batch_idx, (data, target) in enumerate(train_loader):"}


# ---------------------------------------------------------------------------- the machine
def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(flags: set[str]) -> list[str]:
    """The CPU's native bf16 instruction sets (empty: bf16 is emulated)."""
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure_peak(device: str, dtype, n: int, seconds: float = 1.0) -> float:
    """FLOP/s of an (n x n) @ (n x n) matmul in `dtype` on `device`."""
    import torch

    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    _sync(device)
    t = time.perf_counter()
    a @ b
    _sync(device)
    one = time.perf_counter() - t
    reps = max(2, min(200, int(seconds / max(one, 1e-6))))
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def peaks(device: str, cpu_bf16_native: bool) -> dict[str, float]:
    """Matmul FLOP/s on `device`: fp32 and bf16 (and tf32 on a GPU)."""
    import torch

    out = {}
    if device == "cuda":
        tf32 = torch.backends.cuda.matmul.allow_tf32
        try:
            torch.backends.cuda.matmul.allow_tf32 = False
            out["fp32"] = measure_peak(device, torch.float32, 8192)
            if torch.backends.cudnn.allow_tf32:  # fp32 convolutions run as TF32
                torch.backends.cuda.matmul.allow_tf32 = True
                out["tf32"] = measure_peak(device, torch.float32, 8192)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        out["bf16"] = measure_peak(device, torch.bfloat16, 8192)
    else:
        out["fp32"] = measure_peak(device, torch.float32, 2048)
        # emulated bf16 is slow: a smaller matrix keeps this short
        out["bf16"] = measure_peak(device, torch.bfloat16, 2048 if cpu_bf16_native else 1024)
    return out


# ---------------------------------------------------------------------------- the windows
@dataclass
class Data:
    """The training windows, gathered once, and the batches of every step."""

    x: np.ndarray  # (N, 1, L) float32
    y: np.ndarray  # (N,) int64
    batches: np.ndarray  # (steps, batch) int64: class-balanced draws, with replacement


def demo_windows(work: Path):
    """The demo's training and validation windows, built as ``osdml train`` builds them."""
    from osdml.config import RunConfig
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.split import split_events
    from osdml.data.synthetic import SynthSpec, write_synthetic
    from osdml.pipeline import split_windows

    write_synthetic(work / "data", SynthSpec())
    cfg = RunConfig()
    streams = load_streams([work / "data"], cfg.data.reader, cache=False)
    selection = select_events(streams, cfg.data.selection)
    (split,) = split_events(streams, selection, cfg.data.split)
    parts = split_windows(streams, selection, split, cfg)
    return parts.train, parts.val


def small_val(val, n: int = 256):
    """At most `n` validation windows with both classes (validation is not timed)."""
    from osdml.data.windows import Windows

    rng = np.random.default_rng(0)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(val.labels == c))[:n // 2]
                                   for c in np.unique(val.labels)]))
    return Windows(val.streams, val.starts[keep], val.event[keep], val.labels[keep],
                   val.window_samples)


def gather(train, steps: int, batch: int, seed: int = 0) -> Data:
    import torch

    x = train.batch(np.arange(len(train)))
    y = np.asarray(train.labels, dtype=np.int64)
    weights = torch.from_numpy(1.0 / np.bincount(y)[y])
    g = torch.Generator().manual_seed(seed)
    draws = torch.multinomial(weights, steps * batch, replacement=True, generator=g)
    return Data(x, y, draws.reshape(steps, batch).numpy())


def new_model(window: int):
    """DeepEpiCnn as ``fit`` builds it from the default configuration."""
    import torch

    from osdml.config import RunConfig
    from osdml.models import create_model

    cfg = RunConfig()
    torch.manual_seed(cfg.train.seed)
    return create_model(cfg.model.arch, input_length=window, num_classes=2,
                        conv_dropout=cfg.model.conv_dropout,
                        dense_dropout=cfg.model.dense_dropout)


def _optimizer(model):
    import torch

    from osdml.config import RunConfig

    c = RunConfig().train  # as SeizureClassifier.configure_optimizers
    return torch.optim.AdamW(model.parameters(), lr=c.lr_peak, betas=tuple(c.betas),
                             weight_decay=c.weight_decay)


# ---------------------------------------------------------------------------- the bare loop
STAT = {"stat": "median"}  # --stat
GLIBC_TUNED = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184"


def usage() -> tuple[int, float]:
    """(minor page faults, system CPU seconds) of this process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt, r.ru_stime


def summary(ends: list[float], waits: list[float], batch: int, device: str,
            used: tuple[tuple[int, float], tuple[int, float]]) -> dict:
    """Throughput of the timed steps. `ends`: the time each step ended, the one before the
    first timed step included; `waits`: the data time of each timed step; `used`: ``usage()``
    as the timed steps began and ended.

    On the CPU a step's time is the median of the steps (``--stat``: or the fastest, or the
    mean); on a GPU, where steps are queued, always the mean (only the two ends are
    synchronised).
    """
    d = np.diff(np.asarray(ends))
    wall = float(d.sum())
    stat = STAT["stat"] if device == "cpu" else "mean"
    typical = {"median": float(np.median(d)), "min": float(d.min()),
               "mean": wall / len(d)}[stat]
    (f0, s0), (f1, s1) = used
    return {"windows_per_s": batch / typical, "step_ms": 1e3 * typical, "stat": stat,
            "mean_windows_per_s": len(d) * batch / wall, "data_share": float(sum(waits)) / wall,
            "page_faults_per_step": (f1 - f0) / len(d), "sys_s_per_step": (s1 - s0) / len(d),
            "step_s": d.round(6).tolist()}


def bare_loop(model, data: Data, device: str, warmup: int, steps: int, *, bf16: bool = False,
              source: str = "memory") -> dict:
    """Steps of a plain torch loop; `source`: ``memory`` (a tensor on the device the model is
    on: host memory on the CPU, GPU memory on a GPU) or ``pinned`` (GPU only: gathered into
    pinned host buffers, copied with ``non_blocking``)."""
    import torch
    import torch.nn.functional as F

    dev = torch.device(device)
    model = model.to(dev).train()
    opt = _optimizer(model)
    total = warmup + steps
    idx = torch.from_numpy(data.batches[:total])
    x_all, y_all = torch.from_numpy(data.x), torch.from_numpy(data.y)
    if source == "pinned":
        x_all, y_all = x_all.pin_memory(), y_all.pin_memory()
        b = idx.shape[1]
        bufs = [(torch.empty((b, *x_all.shape[1:])).pin_memory(),
                 torch.empty(b, dtype=torch.int64).pin_memory()) for _ in range(2)]
        copied: list = [None, None]
    else:
        x_all, y_all, idx = x_all.to(dev), y_all.to(dev), idx.to(dev)
    first_s, ends, waits = 0.0, [], []
    for i in range(total):
        if i == warmup:
            _sync(dev)
            ends.append(time.perf_counter())
            used0 = usage()
        t = time.perf_counter()
        if source == "pinned":
            k = i % 2
            if copied[k] is not None:  # the copy out of this buffer has finished
                copied[k].synchronize()
            xb, yb = bufs[k]
            torch.index_select(x_all, 0, idx[i], out=xb)
            torch.index_select(y_all, 0, idx[i], out=yb)
            x, y = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            copied[k] = torch.cuda.Event()
            copied[k].record()
        else:
            x, y = x_all.index_select(0, idx[i]), y_all.index_select(0, idx[i])
        if i >= warmup:
            waits.append(time.perf_counter() - t)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i == 0:
            _sync(dev)
            first_s = time.perf_counter() - t
        if i >= warmup:
            if i == total - 1:
                _sync(dev)
            ends.append(time.perf_counter())
    return {**summary(ends, waits, idx.shape[1], dev.type, (used0, usage())),
            "first_step_s": first_s,
            "loss_finite": bool(torch.isfinite(loss).item())}


def child(args) -> None:
    """(child process) The bare loop, on torch.compile(model) with --child-compile; prints one
    JSON line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True  # as the bare loops in the parent
    z = np.load(args.child)
    data = Data(z["x"], z["y"], z["batches"])
    model = new_model(data.x.shape[-1]).to(args.device)
    if args.child_compile:
        model = torch.compile(model)
    r = bare_loop(model, data, args.device, args.warmup_steps, args.steps,
                  bf16=args.child_bf16, source="memory")
    print(json.dumps(r))


def run_child(args, data: Data, work: Path, device: str, bf16: bool, compile_: bool,
              env: dict[str, str] | None = None) -> dict:
    """The bare loop in a child process (compiled: limited to --compile-timeout seconds)."""
    npz = work / "windows.npz"
    if not npz.exists():
        np.savez(npz, x=data.x, y=data.y, batches=data.batches)
    cmd = [sys.executable, __file__, "--child", str(npz), "--device", device,
           "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps),
           "--batch-size", str(args.batch_size), "--stat", args.stat]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if bf16:
        cmd.append("--child-bf16")
    env = {**os.environ, **(env or {})}
    if compile_:
        cmd.append("--child-compile")
        # a fresh cache: the compile time of a first run, not of a rerun on this machine
        env["TORCHINDUCTOR_CACHE_DIR"] = str(work / f"inductor-{device}-{bf16}")
    timeout = args.compile_timeout if compile_ else None
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"failed": f"not done within --compile-timeout {args.compile_timeout} s"}
    if p.returncode != 0:
        lines = [ln.strip() for ln in p.stderr.splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln),
                   lines[-1] if lines else f"exit status {p.returncode}")
        return {"failed": why[:300]}
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["child_wall_s"] = time.perf_counter() - t
    return r


# ---------------------------------------------------------------------------- osdml's loop
@contextlib.contextmanager
def _extra_callback(callback):
    """Have the Lightning trainers built inside this block also call `callback` (fit takes no
    callbacks of its own)."""
    import lightning

    original = lightning.Trainer

    class TimedTrainer(original):
        def __init__(self, *a, **kw):
            kw["callbacks"] = [*(kw.get("callbacks") or []), callback]
            super().__init__(*a, **kw)

    lightning.Trainer = TimedTrainer
    try:
        yield
    finally:
        lightning.Trainer = original


def _step_timer(warmup: int, steps: int, device: str):
    import lightning as L

    class StepTimer(L.Callback):
        """Times of on_train_batch_start / on_train_batch_end of every step."""

        def __init__(self):
            self.starts: list[float] = []
            self.ends: list[float] = []
            self.used: list = []
            self.ran: dict = {}

        def on_train_start(self, trainer, module):
            import torch

            self.ran = {"precision": str(trainer.precision),
                        "accelerator": type(trainer.accelerator).__name__,
                        "device": str(module.device),
                        "cudnn_benchmark": torch.backends.cudnn.benchmark}
            if module.device.type != device:  # do not train 200 GPU-sized steps on a CPU
                raise RuntimeError(f"train.accelerator = {device!r} not honoured: fit trains "
                                   f"on {module.device}")

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.starts.append(time.perf_counter())

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if len(self.ends) in (warmup - 1, warmup + steps - 1):
                _sync(module.device)  # only at the two ends of the timed steps
                self.used.append(usage())
            self.ends.append(time.perf_counter())

    return StepTimer()


def lightning_run(train, val, warmup: int, steps: int, batch: int, accelerator: str,
                  precision: str) -> dict:
    """osdml's fit on one epoch of warmup + steps batches; the steady steps timed."""
    import torch

    from osdml.config import RunConfig
    from osdml.train.fit import fit

    total = warmup + steps
    cfg = RunConfig.model_validate({"train": {
        "max_epochs": 1, "batch_size": batch, "windows_per_epoch": total * batch,
        "early_stopping_patience": 0, "accelerator": accelerator, "precision": precision}})
    timer = _step_timer(warmup, steps, accelerator)
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    t = time.perf_counter()
    try:
        with _extra_callback(timer):
            fit(cfg, train, val, progress=False)
    finally:  # fit trains with deterministic=True, which is global state
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2:]
    fit_s = time.perf_counter() - t
    if len(timer.ends) < total:
        raise RuntimeError(f"fit ran {len(timer.ends)} training steps, not {total}")
    s, e = timer.starts, timer.ends
    waits = [s[i] - e[i - 1] for i in range(warmup, total)]
    return {**summary(e[warmup - 1:total], waits, batch, torch.device(accelerator).type,
                      tuple(timer.used)),
            "fit_wall_s": fit_s, "ran": timer.ran}


# ---------------------------------------------------------------------------- upstream's loop
def upstream_missing() -> list[str]:
    return [m for m in UPSTREAM_IMPORTS if importlib.util.find_spec(m) is None]


def upstream_about(path: Path) -> str:
    """What was run of upstream, and how it differs from its own defaults."""
    missing = upstream_missing()
    text = ("loop reproduced from " + UPSTREAM_LOOP + ", with its model class imported from "
            "the checkout; balanced batches (its useBalancedBatches path, like osdml's default "
            "balanced sampling; nnConfig_deep_pytorch.json leaves it off: shuffle=True, L972, "
            "the same cost) and osdml's dropouts (conv 0.05, dense 0.025, where "
            "nnConfig_deep_pytorch.json has 0.025 and 0.25) so both train the same network")
    if missing:
        text += f"; nnTrainer.py itself is not importable here (no {', '.join(missing)})"
    with contextlib.suppress(OSError):
        lines = (path / "user_tools/nnTraining2/nnTrainer.py").read_text().splitlines()
        moved = [n for n, code in UPSTREAM_ANCHORS.items()
                 if len(lines) < n or code not in lines[n - 1]]
        if moved:
            text += ("; NOTE this checkout's nnTrainer.py differs from the one cited (lines "
                     f"{', '.join(map(str, moved))} moved): check the reproduction against it")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            text += f"; checkout at {head.stdout.strip()[:12]}"
    return text


def upstream_run(path: Path, data: Data, device: str, warmup: int, steps: int,
                 batch: int) -> dict:
    """nnTraining2's PyTorch training loop (see UPSTREAM_LOOP) on the same windows."""
    import torch
    import torch.nn as nn
    import torch.optim as optim
    from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

    from osdml.config import RunConfig

    nn_dir = path / "user_tools" / "nnTraining2"
    if not (nn_dir / "deepEpiCnnModel_torch.py").is_file():
        raise FileNotFoundError(f"{nn_dir}/deepEpiCnnModel_torch.py: not an OpenSeizureDatabase "
                                "checkout")
    for p in (str(nn_dir), str(path)):
        if p not in sys.path:
            sys.path.insert(0, p)
    import deepEpiCnnModel_torch as upstream  # noqa: I001  (from the checkout)

    model_cfg = RunConfig().model  # the same network as osdml's: dropouts as osdml's default
    window = data.x.shape[-1]
    wrapper = upstream.DeepEpiCnnModelPyTorch(configObj={
        "framework": "pytorch", "sampleFreq": 25, "bufferSeconds": window / 25,
        "convDropout": model_cfg.conv_dropout, "denseDropout": model_cfg.dense_dropout})
    wrapper.device = torch.device(device)  # its own choice: cuda when there is one
    # nnTrainer.load_and_preprocess_data gives (N, 750, 1) (inputDims 1)
    xTrain = np.ascontiguousarray(data.x[:, 0, :, None])  # noqa: N806 (upstream's names)
    yTrain = data.y  # noqa: N806
    torch.manual_seed(0)
    model = wrapper.makeModel(input_shape=xTrain.shape[1:], num_classes=2, nLayers=14)
    dev = wrapper.device
    # L942-L968: tensors, TensorDataset, balanced batches (useBalancedBatches, like osdml's
    # default balanced_sampling), drop_last
    xTrain_tensor = torch.from_numpy(xTrain).float()  # noqa: N806
    yTrain_tensor = torch.from_numpy(yTrain).long()  # noqa: N806
    train_dataset = TensorDataset(xTrain_tensor, yTrain_tensor)
    class_counts = torch.bincount(yTrain_tensor)
    class_weights = 1.0 / class_counts.float()
    sample_weights = class_weights[yTrain_tensor]
    sampler = WeightedRandomSampler(weights=sample_weights, num_samples=len(sample_weights),
                                    replacement=True)
    train_loader = DataLoader(train_dataset, batch_size=batch, sampler=sampler, drop_last=True)
    # L977-L989, values of nnConfig_deep_pytorch.json
    p = {"lrStart": 1e-6, "lr_peak": 1e-4, "lr_main_end": 3e-5, "warmup_steps": 2500,
         "main_steps": 95000, "cooldown_steps": 2500}
    optimizer = optim.AdamW(model.parameters(), lr=p["lrStart"], betas=(0.9, 0.999),
                            weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()

    def get_three_phase_lr(step):  # L1004-L1032
        warmup_, main, cooldown = p["warmup_steps"], p["main_steps"], p["cooldown_steps"]
        if step < warmup_:
            lr = p["lrStart"] + step / warmup_ * (p["lr_peak"] - p["lrStart"])
        elif step < warmup_ + main:
            cosine_factor = 0.5 * (1 + np.cos(np.pi * (step - warmup_) / main))
            lr = p["lr_main_end"] + (p["lr_peak"] - p["lr_main_end"]) * cosine_factor
        else:
            lr = p["lr_main_end"] * (1 - (step - warmup_ - main) / cooldown)
        return lr / p["lrStart"]

    scheduler = optim.lr_scheduler.LambdaLR(optimizer, get_three_phase_lr)
    # L1085-L1110: the step loop (an epoch's end runs validation there: not timed here)
    total = warmup + steps
    model.train()
    train_loss, train_correct, train_total, global_step = 0.0, 0, 0, 0
    batches = iter(train_loader)
    ends, waits = [], []
    while global_step < total:
        if global_step == warmup:
            _sync(dev)
            ends.append(time.perf_counter())
            used0 = usage()
        t = time.perf_counter()
        try:
            data_, target = next(batches)
        except StopIteration:
            batches = iter(train_loader)  # the next epoch
            data_, target = next(batches)
        data_, target = data_.to(dev), target.to(dev)
        if global_step >= warmup:
            waits.append(time.perf_counter() - t)
        optimizer.zero_grad()
        output = model(data_)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()
        scheduler.step()
        global_step += 1
        train_loss += loss.item() * data_.size(0)
        _, predicted = torch.max(output.data, 1)
        train_total += target.size(0)
        train_correct += (predicted == target).sum().item()
        if global_step > warmup:
            if global_step == total:
                _sync(dev)
            ends.append(time.perf_counter())
    return summary(ends, waits, batch, dev.type, (used0, usage()))


# ---------------------------------------------------------------------------- the table
def _row(loop: str, device: str, precision: str, data: str, r: dict | None = None,
         note: str = "") -> dict:
    return {"loop": loop, "device": device, "precision": precision, "data": data,
            "result": r or {}, "note": note}


def _kind(precision: str) -> str:
    return "bf16" if "bf16" in precision else "fp32"


def _cells(rows: list[dict], flop_per_window: float, peak: dict[str, float]) -> list[dict]:
    """The printed table: one dict of strings per row."""
    def ref(r):  # the bare loop at the same precision, data in memory / on the GPU
        for b in rows:
            if (b["loop"] == "bare" and b["device"] == r["device"]
                    and _kind(b["precision"]) == _kind(r["precision"])
                    and b["data"] in ("in memory", "on the GPU")
                    and "windows_per_s" in b["result"]):
                return b["result"]["windows_per_s"]
        return None

    out = []
    for r in rows:
        res = r["result"]
        w = res.get("windows_per_s")
        kind = _kind(r["precision"])
        if kind == "fp32" and "tf32" in peak:
            kind = "tf32"
        base = ref(r)
        flops = None if w is None else w * flop_per_window
        out.append({
            "loop": r["loop"], "device": r["device"], "precision": r["precision"],
            "data": r["data"], "windows/s": "-" if w is None else f"{w:,.0f}",
            "ms/step": "-" if w is None else f"{res['step_ms']:,.1f}",
            "vs bare": "-" if w is None or base is None else f"{w / base:.2f}x",
            "GFLOP/s": "-" if flops is None else f"{flops / 1e9:,.1f}",
            "% of peak": "-" if flops is None else f"{100 * flops / peak[kind]:.1f}% {kind}",
            "data wait": "-" if w is None else f"{100 * res['data_share']:.1f}%",
            "page faults/step": "-" if w is None else f"{res['page_faults_per_step']:,.0f}",
            "note": r["note"]})
    return out


def _goals(rows: list[dict]) -> list[tuple[str, float | None, bool | None, str]]:
    def w(loop, device, precision, data=None):
        for r in rows:
            if (r["loop"] == loop and r["device"] == device and r["precision"] == precision
                    and (data is None or r["data"] == data)):
                return r["result"].get("windows_per_s")
        return None

    out = []
    for dev in ("cpu", "cuda"):
        for prec, lprec in (("fp32", "32-true"), ("bf16 autocast", "bf16-mixed")):
            bare = w("bare", dev, prec, "in memory" if dev == "cpu" else "on the GPU")
            if dev == "cpu" and prec == "fp32":
                # fit() tunes glibc's malloc itself: the fair reference is the tuned bare loop
                bare = w("bare, malloc tuned", dev, prec) or bare
            osd = w("osdml Lightning", dev, lprec)
            if bare and osd:
                out.append((f"{dev}: osdml Lightning {lprec} / bare {prec} (same malloc)",
                            osd / bare,
                            osd / bare >= GOALS["lightning_vs_bare"],
                            f">= {GOALS['lightning_vs_bare']:.2f}"))
    if any(r["device"] == "cuda" for r in rows):
        best = max((r["result"].get("windows_per_s") or 0 for r in rows
                    if r["device"] == "cuda" and r["loop"] != "upstream"), default=0)
        lit = max((r["result"].get("windows_per_s") or 0 for r in rows
                   if r["device"] == "cuda" and r["loop"] == "osdml Lightning"), default=0)
        out.append(("cuda: best bare windows/s", best, best >= GOALS["gpu_windows_per_s"],
                    f">= {GOALS['gpu_windows_per_s']:,}"))
        out.append(("cuda: osdml Lightning windows/s", lit, lit >= GOALS["gpu_windows_per_s"],
                    f">= {GOALS['gpu_windows_per_s']:,}"))
    up = w("upstream", "cpu", "fp32")
    if up:
        for lprec in ("bf16-mixed", "32-true"):
            osd = w("osdml Lightning", "cpu", lprec)
            if osd:
                out.append((f"cpu: osdml Lightning {lprec} / upstream fp32", osd / up,
                            osd / up >= GOALS["osdml_vs_upstream_cpu"],
                            f">= {GOALS['osdml_vs_upstream_cpu']:g}"))
    return out


# ---------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, help="timed steps per loop (default 8 on the CPU, "
                    "200 on a GPU)")
    ap.add_argument("--warmup-steps", type=int, help="untimed steps first, at least 1 "
                    "(default 1 on the CPU, 20 on a GPU)")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--stat", choices=("median", "min", "mean"), default="median",
                    help="CPU step time: the median step, the fastest (on a machine shared "
                    "with other work) or the mean")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--malloc", choices=("default", "tuned"), default="default",
                    help="tuned: rerun this script with glibc's malloc keeping freed memory "
                    "(GLIBC_TUNABLES), so page faults do not blur the comparison of loops")
    ap.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                    help="auto: cuda when there is a GPU, else cpu")
    ap.add_argument("--cpu-bf16", choices=("auto", "on", "off"), default="auto",
                    help="bf16 on the CPU: auto measures it only with native bf16")
    ap.add_argument("--skip-lightning", action="store_true")
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--compile-timeout", type=int, default=300,
                    help="seconds for each torch.compile child (compilation and its steps)")
    ap.add_argument("--upstream", type=Path, help="an OpenSeizureDatabase checkout")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-compile", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-bf16", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA GPU")
    warm, steps = DEFAULT_STEPS[device]
    args.warmup_steps = warm if args.warmup_steps is None else args.warmup_steps
    args.steps = steps if args.steps is None else args.steps
    if args.warmup_steps < 1 or args.steps < 1:
        sys.exit("--warmup-steps and --steps must be at least 1")
    STAT["stat"] = args.stat
    tuned = os.environ.get("GLIBC_TUNABLES") == GLIBC_TUNED
    if args.malloc == "tuned" and not tuned:
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]],
                  {**os.environ, "GLIBC_TUNABLES": GLIBC_TUNED})
    if args.child:
        child(args)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    flags = cpu_flags()
    bf16_isa = native_bf16(flags)
    cpu_bf16 = args.cpu_bf16 == "on" or (args.cpu_bf16 == "auto" and bool(bf16_isa))
    no_bf16 = ("skipped: no native bf16 on this CPU (no avx512_bf16/amx_bf16); "
               "--cpu-bf16 on to measure it emulated")
    total = args.warmup_steps + args.steps
    b = args.batch_size

    from osdml.models.cost import multiply_accumulates

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="osdml-train-throughput-") as tmp:
        work = Path(tmp)
        print("building the demo windows ...", file=sys.stderr)
        train, val = demo_windows(work)
        val = small_val(val)
        data = gather(train, total, b)
        window = data.x.shape[-1]
        macs = multiply_accumulates(new_model(window), (1, 1, window))
        flop_per_window = 3 * 2 * macs
        print("measuring the matmul peak ...", file=sys.stderr)
        peak = peaks(device, bool(bf16_isa))
        rows: list[dict] = []

        def note(msg: str) -> None:
            print(f"{msg} ...", file=sys.stderr)

        if device == "cpu":
            note("bare fp32")
            rows.append(_row("bare", "cpu", "fp32", "in memory",
                             bare_loop(new_model(window), data, "cpu", args.warmup_steps,
                                       args.steps)))
            if cpu_bf16:
                note("bare bf16")
                rows.append(_row("bare", "cpu", "bf16 autocast", "in memory",
                                 bare_loop(new_model(window), data, "cpu", args.warmup_steps,
                                           args.steps, bf16=True),
                                 "" if bf16_isa else "bf16 emulated (no native bf16)"))
            else:
                rows.append(_row("bare", "cpu", "bf16 autocast", "in memory", note=no_bf16))
            if platform.libc_ver()[0] == "glibc" and not tuned:
                note("bare fp32, glibc malloc tuned")
                r = run_child(args, data, work, "cpu", False, compile_=False,
                              env={"GLIBC_TUNABLES": GLIBC_TUNED})
                rows.append(_row("bare, malloc tuned", "cpu", "fp32", "in memory",
                                 None if "failed" in r else r,
                                 f"failed: {r['failed']}" if "failed" in r else
                                 "GLIBC_TUNABLES mmap_threshold 4 GiB, trim_threshold 16 GiB"))
            compiled = [("fp32", False)] + ([("bf16 autocast", True)] if cpu_bf16 else [])
        else:
            # cuDNN autotuning for the bare loops only: fit gets the session's default, as
            # under osdml train (Lightning's Trainer takes cudnn.benchmark as it finds it)
            benchmark = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = True
            for prec, bf16 in (("fp32", False), ("bf16 autocast", True)):
                for source, label in (("memory", "on the GPU"), ("pinned", "pinned host")):
                    note(f"bare {prec} {label}")
                    rows.append(_row("bare", "cuda", prec, label,
                                     bare_loop(new_model(window), data, "cuda",
                                               args.warmup_steps, args.steps, bf16=bf16,
                                               source=source), "cudnn.benchmark"))
            torch.backends.cudnn.benchmark = benchmark
            compiled = [("bf16 autocast", True)]
        if args.skip_compile:
            rows.append(_row("bare, torch.compile", device, compiled[0][0],
                             "in memory" if device == "cpu" else "on the GPU",
                             note="skipped (--skip-compile)"))
        else:
            for prec, bf16 in compiled:
                note(f"torch.compile {prec} (up to {args.compile_timeout} s)")
                r = run_child(args, data, work, device, bf16, compile_=True)
                rows.append(_row("bare, torch.compile", device, prec,
                                 "in memory" if device == "cpu" else "on the GPU",
                                 None if "failed" in r else r,
                                 f"failed: {r['failed']}" if "failed" in r else
                                 f"first step (compiling, cold cache) {r['first_step_s']:.0f} s"))
        # upstream before osdml's loop: fit() makes glibc keep freed memory for the rest of
        # the process (osdml.train.devices.keep_freed_memory); upstream runs as it ships
        upstream_note = None
        if args.upstream:
            upstream_note = upstream_about(args.upstream.resolve())
            note("upstream nnTraining2 loop")
            try:
                r = upstream_run(args.upstream.resolve(), data, device, args.warmup_steps,
                                 args.steps, b)
                rows.append(_row("upstream", device, "fp32", "TensorDataset + DataLoader", r,
                                 "nnTrainer.py loop, reproduced (see below)"))
            except Exception as e:
                rows.append(_row("upstream", device, "fp32", "TensorDataset + DataLoader",
                                 note=f"failed: {type(e).__name__}: {e}"[:300]))

        if args.skip_lightning:
            rows.append(_row("osdml Lightning", device, "32-true", "WindowSet gather",
                             note="skipped (--skip-lightning)"))
        else:
            for prec in ("32-true", "bf16-mixed"):
                if device == "cpu" and prec == "bf16-mixed" and not cpu_bf16:
                    rows.append(_row("osdml Lightning", "cpu", prec, "WindowSet gather",
                                     note=no_bf16))
                    continue
                note(f"osdml Lightning {prec}")
                try:
                    r = lightning_run(train, val, args.warmup_steps, args.steps, b, device, prec)
                except Exception as e:  # report, go on with the others
                    rows.append(_row("osdml Lightning", device, prec, "WindowSet gather",
                                     note=f"failed: {type(e).__name__}: {e}"[:300]))
                    continue
                ran = r["ran"]
                issues = []
                if ran["precision"] != prec:
                    issues.append(f"precision NOT honoured: ran {ran['precision']}")
                if not ran["device"].startswith(device):
                    issues.append(f"accelerator NOT honoured: ran on {ran['device']}")
                if device == "cuda":
                    issues.append(f"cudnn.benchmark {ran['cudnn_benchmark']}")
                rows.append(_row("osdml Lightning", device, prec, "WindowSet gather", r,
                                 "; ".join([f"ran {ran['precision']} on {ran['device']}",
                                            *issues])))
    cells = _cells(rows, flop_per_window, peak)
    goals = _goals(rows)
    if device == "cuda":
        where = f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    else:
        where = (f"{cpu_name()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} "
                 f"torch threads, native bf16: {', '.join(bf16_isa) or 'no'}, "
                 f"malloc {'tuned (GLIBC_TUNABLES)' if tuned else 'default'}, "
                 f"torch {torch.__version__}")
    import lightning

    stat = args.stat if device == "cpu" else "mean"
    about = (f"{where}, lightning {lightning.__version__}; batch {b}, {args.steps} timed steps "
             f"after {args.warmup_steps} warm-up, windows/s of the {stat} step; "
             f"{len(data.y):,} demo training windows; "
             f"DeepEpiCnn {macs / 1e6:.1f} M MACs/window, a step taken as "
             f"{flop_per_window / 1e6:.0f} MFLOP/window; matmul peak "
             + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peak.items())
             + f"; {time.perf_counter() - t_start:.0f} s in all")
    from _table import print_rows

    print_rows(cells, args.markdown)
    print(f"\n{about}.")
    if upstream_note:
        print(f"upstream: {upstream_note}.")
    print()
    for name, value, met, goal in goals:
        mark = "met   " if met else "MISSED"
        shown = f"{value:,.0f}" if value and value > 100 else f"{value:.2f}"
        print(f"{mark} {name}: {shown} (goal {goal})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "about": about, "device": device, "cpu": cpu_name(), "native_bf16": bf16_isa,
            "malloc": "tuned" if tuned else "default",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "batch_size": b,
            "steps": args.steps, "warmup_steps": args.warmup_steps, "macs": macs,
            "flop_per_window": flop_per_window, "peak_flops": peak,
            "windows": len(data.y), "upstream": upstream_note, "rows": rows,
            "goals": [{"name": n, "value": v, "met": m, "goal": g} for n, v, m, g in goals]},
            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
