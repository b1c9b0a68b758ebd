"""The .pte file: an ExecuTorch program, the deployment format of the app.

Stages, each failure named: ``torch.export.export`` of the eval-mode model on an example of
``spec.input_shape`` -> lowering (``to_edge_transform_and_lower`` with the XNNPACK partitioner,
or plain ``to_edge`` with portable kernels) -> ``to_executorch`` serialisation -> atomic write.
The spec's key numbers are stored as constant methods (``input_length``, ``sample_rate_hz``,
``num_classes``, ``threshold``, and the whole spec as ``spec_json``), so the phone can read them
without a sidecar; ``model.pte.json`` beside the file adds size, sha256, backend, quantisation,
delegation and ``min_cpu_features`` for the app's models index.

``min_cpu_features`` is empty for every program osdml makes: XNNPACK picks its kernels at run
time and always has an ARMv8 Advanced SIMD path (see ``min_cpu_features``, docs/export.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from osdml.errors import ExportError, InputError
from osdml.fileio import atomic_write, silenced_stderr, write_json
from osdml.spec import ModelSpec

BACKENDS = ("xnnpack", "portable")
# ExecuTorch ScalarType codes (c10 numbering) of the dtypes a model input may have
_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
                 6: "float32", 7: "float64", 11: "bool", 15: "bfloat16"}


def executorch_status() -> str | None:
    """None when ExecuTorch can export and run programs here, else why not (one line)."""
    from osdml.doctor import stack_problem

    problem = stack_problem()  # a torch/ExecuTorch mismatch, named before any import
    if problem:
        return problem
    try:
        with quiet_torch_logs():
            import executorch.exir  # noqa: F401
            import executorch.runtime  # noqa: F401
    except Exception as e:  # ImportError, or a version mismatch raising something else
        return f"executorch is not importable ({type(e).__name__}: {str(e).splitlines()[0]})"
    return None


@dataclass
class PteInfo:
    """What was written: the file and its sidecar facts."""

    path: str
    size_bytes: int
    sha256: str
    backend: str
    quantization: str | None = None
    min_cpu_features: list[str] = field(default_factory=list)
    optional_cpu_features: list[str] = field(default_factory=list)
    delegated_ops: int = 0
    portable_ops: dict[str, int] = field(default_factory=dict)


def export_pte(model: torch.nn.Module | None, spec: ModelSpec, path: str | Path, *,
               backend: str = "xnnpack", sidecar: bool = True, exported=None,
               quantization: str | None = None) -> PteInfo:
    """Export `model` to an ExecuTorch program at `path` (and ``<path>.json``), atomically.

    Parameters
    ----------
    model : torch.nn.Module or None
        Put in eval mode first; exported with a static input of ``spec.input_shape``
        (float32, (1, 1, 750) for the app). A quantized graph module is accepted too.
    spec : ModelSpec
    backend : {"xnnpack", "portable"}
        ``xnnpack`` lowers every supported operator to the XNNPACK delegate;
        ``portable`` keeps ExecuTorch's portable kernels (for comparison: much slower).
    sidecar : bool, default=True
        Also write the ``.pte.json`` manifest.
    exported : torch.export.ExportedProgram, optional
        Lower this program instead of exporting `model` (TorchScript converted graphs).
    quantization : str, optional
        Recorded in the sidecar (``"int8"`` for PT2E-quantized graphs).

    Raises
    ------
    ExportError
        If a stage fails; the message names the stage (export, lowering, serialisation).
    """
    path = Path(path)
    buffer, edge = program_buffer(model, spec, backend=backend, exported=exported)
    with atomic_write(path, "wb") as f:
        f.write(buffer)
    info = PteInfo(path=str(path), size_bytes=len(buffer),
                   sha256=hashlib.sha256(buffer).hexdigest(), backend=backend,
                   quantization=quantization,
                   min_cpu_features=min_cpu_features(backend, quantization),
                   optional_cpu_features=optional_cpu_features(backend, quantization),
                   **_delegation(edge))
    if sidecar:
        write_pte_manifest(path, spec, info)
    return info


def program_buffer(model, spec: ModelSpec, *, backend: str = "xnnpack", exported=None,
                   program: bool = False, extra_constants: dict[str, Any] | None = None):
    """Export and lower; return ``(flatbuffer bytes, edge program)`` (or the ExecuTorch
    program manager instead of the bytes when `program` is True, for bundling).
    `extra_constants` become constant methods beside the spec's."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    example = (torch.zeros(spec.input_shape, dtype=torch.float32),)
    with warnings.catch_warnings(), quiet_torch_logs():
        warnings.simplefilter("ignore", FutureWarning)  # torch/executorch internal deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        if exported is None:
            exported = _stage("export (torch.export)",
                              lambda: torch.export.export(_eval(model), example))
        edge = _stage("lowering", lambda: _lower(exported, spec, backend, extra_constants))
        manager = _stage("serialisation", edge.to_executorch)
        return (manager if program else manager.buffer), edge


def _eval(model):
    try:
        return model.eval()
    except NotImplementedError:  # a graph module from torch.export (quantized): already eval
        return model


def min_cpu_features(backend: str, quantization: str | None) -> list[str]:
    """CPU features an arm64 Android phone needs to run this program, for the app's models
    index: none beyond the ARMv8-A baseline (Advanced SIMD), for fp32 and int8 alike.

    XNNPACK reads the CPU's features at start-up (cpuinfo) and picks each micro-kernel family
    from them: fp32 convolutions and GEMMs use NEON-FMA kernels with no feature test, and int8
    (qs8 activations, qc8 weights) GEMMs take i8mm, else dotprod, else a NEON ``mlal`` kernel
    that is always there. Feature-specific kernels are compiled in their own files, so their
    presence in the library requires nothing of the phone. Portable kernels are plain C++.
    docs/export.md gives the sources.
    """
    return []


def optional_cpu_features(backend: str, quantization: str | None) -> list[str]:
    """Features XNNPACK uses when the phone has them (faster, never required)."""
    return ["asimddp", "i8mm"] if backend == "xnnpack" and quantization == "int8" else []


def _stage(name: str, fn):
    try:
        return fn()
    except Exception as e:
        raise ExportError(f".pte export failed at {name}: {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from e


def _lower(exported, spec: ModelSpec, backend: str, extra: dict[str, Any] | None = None):
    from executorch.exir import to_edge, to_edge_transform_and_lower

    constants = {**spec.constant_methods(), **(extra or {})}
    if backend == "portable":
        return to_edge(exported, constant_methods=constants)
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()],
                                       constant_methods=constants)


def _delegation(edge) -> dict[str, Any]:
    """Count delegate calls and the operators left to portable kernels in `forward`."""
    graph = edge.exported_program("forward").graph
    delegated, portable = 0, Counter()
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if "call_delegate" in name:
            delegated += 1
        elif name not in ("getitem", "alloc"):  # alloc: memory planning, not an operator
            portable[name] += 1
    return {"delegated_ops": delegated, "portable_ops": dict(portable)}


def write_pte_manifest(path: str | Path, spec: ModelSpec, info: PteInfo,
                       extra: dict[str, Any] | None = None) -> Path:
    """Write ``<path>.json``: the spec, the file facts the app's models index needs, and what
    is known of the program in the phone's runtime (``phone_runtime``: ExecuTorch 1.0.1,
    ``osdml.export.phone_runtime``); `extra` adds keys, such as how the file was converted."""
    from osdml.export.phone_runtime import phone_runtime_record

    manifest = {"file": Path(path).name, **{k: v for k, v in asdict(info).items() if k != "path"},
                "phone_runtime": phone_runtime_record(info.backend, info.quantization,
                                                      spec.arch),
                **(extra or {}), "spec": spec.model_dump(mode="json")}
    return write_json(Path(str(path) + ".json"), manifest)


def update_pte_manifest(path: str | Path, **keys: Any) -> Path | None:
    """Add or replace top-level `keys` in the sidecar ``<path>.json`` (atomically); None when
    there is no sidecar."""
    import json

    sidecar = Path(str(path) + ".json")
    if not sidecar.is_file():
        return None
    manifest = json.loads(sidecar.read_text(encoding="utf-8"))
    manifest.update(keys)
    return write_json(sidecar, manifest)


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def quiet_torch_logs():
    """Hide the internal deprecation notes torch, torchao and executorch log while exporting
    (torch configures its loggers when imported, so this is set around the work, not at
    start-up)."""
    import logging

    import torch  # noqa: F401  (configure torch's loggers first, then lower them)

    # fake_tensor logs a whole traceback at ERROR when a shape does not fit; the exception
    # that follows says the same in one line
    names = ("torch", "torchao", "executorch", "torch._subclasses.fake_tensor")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL if lg.name.endswith("fake_tensor") else logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# --------------------------------------------------------------------------- runtime

def unloadable(path: Path, error: Exception, data: bytes | None = None) -> str:
    """One line on why the runtime refused `path`: the flatbuffer parser's reason when it has
    one (the runtime itself only gives an error code), else the runtime's message."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary

        deserialize_pte_binary(data if data is not None else Path(path).read_bytes())
    except Exception as e:  # the parser says what is wrong with the bytes
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        reason = f"the program does not parse: {first[:200]}"
    else:
        if "0x:14" in reason or "0x14" in reason:  # Error::OperatorMissing: a sound file
            return (f"cannot load {path} in this ExecuTorch runtime ({reason}: OperatorMissing, "
                    "an operator in the program has no kernel here, such as aten.sort); "
                    "export the model without that operator")
    return (f"cannot load {path} as an ExecuTorch program ({reason}); a truncated or "
            "damaged file? Rebuild it with osdml convert")


class PteRunner:
    """Run a .pte's ``forward`` in the ExecuTorch runtime, one window at a time.

    Raises
    ------
    InputError
        If the file cannot be loaded as an ExecuTorch program.
    """

    def __init__(self, path: str | Path | bytes, name: str | None = None):
        from executorch.runtime import Runtime

        self.path = Path(name) if isinstance(path, bytes) else Path(path)
        try:
            with silenced_stderr():
                self.program = Runtime.get().load_program(path if isinstance(path, bytes)
                                                          else self.path)
                self.method = self.program.load_method("forward")
        except Exception as e:
            raise InputError(unloadable(self.path, e, path if isinstance(path, bytes) else None)
                             ) from None
        meta = self.method.metadata.input_tensor_meta(0)
        self.input_shape = tuple(meta.sizes())
        self.input_dtype = _SCALAR_TYPES.get(int(meta.dtype()), f"dtype code {meta.dtype()}")

    def constant(self, name: str) -> Any:
        """The value of a constant method (``input_length``, ``spec_json``, ...)."""
        return self.program.load_method(name).execute([])[0]

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """Logits (1, classes) for one window of the program's input shape.

        Raises
        ------
        InputError
            If the window's shape or dtype differs from the program's input, in one line
            ("expected (1, 1, 750) float32, got (1, 750) float64").
        """
        x = np.asarray(window)
        if tuple(x.shape) != self.input_shape or x.dtype != np.float32:
            raise InputError(f"{self.path}: expected {self.input_shape} {self.input_dtype}, "
                             f"got {tuple(x.shape)} {x.dtype}")
        with silenced_stderr():  # portable kernels print cpuinfo diagnostics on first use
            return self.method.execute([torch.from_numpy(x.copy())])[0].numpy()
