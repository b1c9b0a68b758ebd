"""``osdml inspect``: what a model file is and what it holds, without changing it.

For every kind: size and sha256. ``.pte`` / ``.bpte``: methods, the forward input and output
shapes and dtypes, the constant methods (spec), the operators in the XNNPACK delegate and those
left to portable kernels, and (``.bpte``) the number of test cases. ``.ptl`` / TorchScript: the
spec if present, training mode, parameters, output shape for the spec's input. Checkpoints:
what kind (osdml, nnTraining2, state dict), the spec or the inferred architecture, parameters;
a pickled whole module is reported, not loaded. ``.tflite``: input and output names, shapes and
dtypes, operators, and whether the file fits the app's TFLite call (read with LiteRT, the
``litert`` extra).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from osdml.errors import InputError
from osdml.export import sniff as sn


def describe(path: str | Path) -> dict[str, Any]:
    """A JSON-able description of the model file at `path`.

    Raises
    ------
    InputError
        If the file is not a model file (see ``sniff``).
    """
    found = sn.sniff(path)
    data = found.path.read_bytes()
    info: dict[str, Any] = {"path": str(found.path), "kind": found.kind,
                            "description": found.description, "size_bytes": found.size,
                            "sha256": hashlib.sha256(data).hexdigest()}
    try:
        if found.kind == sn.PTE:
            info.update(_program(data, found.path))
        elif found.kind == sn.BPTE:
            from executorch.devtools.bundled_program.serialize import (
                deserialize_from_flatbuffer_to_bundled_program,
            )

            bundled = deserialize_from_flatbuffer_to_bundled_program(data)
            info["test_cases"] = sum(len(s.test_cases) for s in bundled.method_test_suites)
            info.update(_program(bundled.program, found.path))
        elif found.kind in (sn.PTL, sn.TORCHSCRIPT):
            info.update(_torchscript(found))
        elif found.kind == sn.TFLITE:
            from osdml.export.tflite import describe_tflite

            info.update(describe_tflite(found.path))
        else:
            info.update(_checkpoint(found))
    except InputError:
        raise
    except Exception as e:  # a damaged file can fail anywhere inside the parsers
        raise InputError(f"cannot inspect {found.path}: {found.description} that does not parse "
                         f"({type(e).__name__}: {str(e).strip().splitlines()[0][:120]})"
                         ) from None
    sidecar = Path(str(found.path) + ".json")
    if sidecar.is_file():
        try:
            manifest = json.loads(sidecar.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
            info["sidecar"] = {k: manifest.get(k) for k in ("backend", "quantization",
                                                             "min_cpu_features", "sha256")}
            info["sidecar"]["sha256_matches"] = manifest.get("sha256") == info["sha256"]
        except (OSError, ValueError):
            info["sidecar"] = {"error": f"{sidecar.name} is not a valid osdml sidecar"}
    return info


def _program(buffer: bytes, path: Path) -> dict[str, Any]:
    """Methods, I/O, constants and delegation of a program buffer."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    from osdml.export.pte import _SCALAR_TYPES

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = deserialize_pte_binary(buffer)
    except Exception as e:
        raise InputError(f"cannot inspect {path}: the ExecuTorch program does not parse "
                         f"({str(e).strip().splitlines()[0]})") from None
    program = getattr(program, "program", program)
    methods, constants = {}, {}
    for plan in program.execution_plan:
        def tensor(i, plan=plan):
            v = plan.values[i].val
            sizes = getattr(v, "sizes", None)
            if sizes is None:
                return {"value": getattr(v, "int_val", getattr(v, "double_val", None))}
            return {"shape": list(sizes),
                    "dtype": _SCALAR_TYPES.get(int(v.scalar_type), str(v.scalar_type))}
        methods[plan.name] = {
            "inputs": [tensor(i) for i in plan.inputs],
            "outputs": [tensor(i) for i in plan.outputs],
            "delegates": [d.id for d in plan.delegates],
            "portable_operators": sorted({o.name for o in plan.operators}),
        }
        if not plan.inputs and len(plan.outputs) == 1:  # a constant method
            v = plan.values[plan.outputs[0]].val
            constants[plan.name] = next((getattr(v, a) for a in ("int_val", "double_val",
                                                                  "string_val", "bool_val")
                                         if hasattr(v, a)), None)
    forward = methods.get("forward", {})
    spec = constants.pop("spec_json", None)
    out: dict[str, Any] = {"methods": sorted(methods), "forward": forward,
                           "constants": constants}
    if spec:
        try:
            out["spec"] = json.loads(spec)
        except ValueError:
            out["spec"] = None
    delegated = len(forward.get("delegates", []))
    portable = forward.get("portable_operators", [])
    out["delegation"] = {"xnnpack_delegate_calls": sum(1 for d in forward.get("delegates", [])
                                                       if "Xnnpack" in d),
                         "portable_operators": portable,
                         "summary": (f"{delegated} delegate call(s); "
                                     f"{len(portable)} operator kind(s) on portable kernels"
                                     + (f": {', '.join(portable)}" if portable else ""))}
    return out


def _torchscript(found: sn.Sniffed) -> dict[str, Any]:
    import torch

    from osdml.export.ptl import read_ptl_spec

    spec = read_ptl_spec(found.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scripted = torch.jit.load(str(found.path), map_location="cpu")
        except Exception as e:
            raise InputError(f"cannot inspect {found.path}: TorchScript cannot load it "
                             f"({str(e).strip().splitlines()[0]})") from None
    out: dict[str, Any] = {"spec": None if spec is None else spec.model_dump(mode="json"),
                           "training_mode": bool(scripted.training),
                           "parameters": int(sum(p.numel() for p in scripted.parameters()))}
    shape = tuple(spec.input_shape) if spec else (1, 1, 750)
    try:
        with torch.no_grad():
            y = scripted(torch.zeros(shape))
        out["forward"] = {"inputs": [{"shape": list(shape), "dtype": "float32"}],
                          "outputs": [{"shape": list(y.shape), "dtype": str(y.dtype)[6:]}]}
    except Exception as e:
        out["forward"] = {"error": f"cannot take {shape}: {str(e).strip().splitlines()[0]}"}
    return out


def _checkpoint(found: sn.Sniffed) -> dict[str, Any]:
    from osdml.export.source import load_source

    try:
        src = load_source(found.path)
    except InputError as e:
        if "--trust" in str(e):
            what = str(e).split("it holds ")[-1].split(", most")[0]  # names the global
            return {"contents": f"{what}; not loaded: unpickling it would run code from the "
                                "file"}
        raise
    out: dict[str, Any] = {"contents": src.origin, "notes": src.notes,
                           "spec": src.spec.model_dump(mode="json"),
                           "parameters": int(sum(p.numel() for p in src.model.parameters()))}
    import torch

    with torch.no_grad():
        y = src.model(torch.zeros(tuple(src.spec.input_shape)))
    out["forward"] = {"inputs": [{"shape": list(src.spec.input_shape), "dtype": "float32"}],
                      "outputs": [{"shape": list(y.shape), "dtype": "float32"}]}
    return out
