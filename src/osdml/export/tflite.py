"""The .tflite file, run as the app's TFLite path runs it (``SdAlgMl.evaluateTfLiteModel``).

The app gives the interpreter one float32 input ``[1, input_size, 1]`` (the buffer of
acceleration magnitudes in g) and a ``float[1][2]`` output buffer, and takes
``p = output[0][1]`` as it is: no softmax. A TFLite model must therefore end in a softmax; one
that outputs logits gives the app a "probability" that is a logit (docs: APP_CONTRACT.md).

osdml runs .tflite files in LiteRT (``ai_edge_litert``, the successor of TensorFlow Lite's
interpreter), one thread, one window at a time. It is an optional extra:
``pip install "osdml[litert]"``. Nothing here imports it (or torch) at module level.

- ``TfliteRunner``: load, check the app's interface, run osdml windows (1, 1, N).
- ``describe_tflite``: what ``osdml inspect`` says about a .tflite (any interface).
- ``check_tflite``: what ``osdml validate`` checks: the app's contract on windows (every output
  a finite probability pair), and optionally parity with the torch model it was made from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from osdml.errors import InputError
from osdml.fileio import silenced_stderr

INSTALL_HINT = 'pip install "osdml[litert]"'
PROB_SUM_TOL = 1e-3  # |output[0][0] + output[0][1] - 1| allowed for a probability pair
PROB_RANGE_TOL = 1e-6  # float32 rounding of a softmax at 0 or 1
APP_THRESHOLD = 0.5  # the app's default MlSeizureProbabilityThresholdPct / 100
DEFAULT_RANDOM = 32  # random windows validate adds to a .tflite check when --random is 0


def litert_interpreter() -> type:
    """``ai_edge_litert.interpreter.Interpreter``.

    Raises
    ------
    InputError
        If ai-edge-litert is not installed (one line with the install command).
    """
    try:
        with silenced_stderr():
            from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise InputError("running .tflite files needs the LiteRT runtime (ai-edge-litert), "
                         f"which is not installed: {INSTALL_HINT}") from None
    return Interpreter


def litert_version() -> str | None:
    """The installed ai-edge-litert version, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return None


def load_interpreter(path: Path):
    """A LiteRT interpreter for `path` with its tensors allocated (one thread, the default
    XNNPACK delegate as on the phone).

    Raises
    ------
    InputError
        If ai-edge-litert is missing or the interpreter refuses the file.
    """
    interpreter_cls = litert_interpreter()
    if not path.is_file():
        raise InputError(f"cannot read model: {path} does not exist")
    try:
        with silenced_stderr():
            interpreter = interpreter_cls(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()
    except Exception as e:  # the interpreter's message, first line
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot load {path}: LiteRT refuses it as a TFLite model "
                         f"({reason[:200]}); a truncated or damaged file?") from None
    return interpreter


def tensor_facts(d: dict[str, Any]) -> dict[str, Any]:
    """A tensor's details as JSON-able facts."""
    scale, zero = d.get("quantization", (0.0, 0))
    out = {"name": d["name"], "shape": [int(v) for v in d["shape"]],
           "dtype": np.dtype(d["dtype"]).name}
    signature = d.get("shape_signature")
    if signature is not None and list(signature) != out["shape"]:
        out["shape_signature"] = [int(v) for v in signature]
    if scale:
        out["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
    return out


def app_interface_problem(inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
                          ) -> str | None:
    """None when the model fits the app's TFLite call (one float32 input [1, N, 1]; the first
    output float32 [1, 2]), else what does not fit, in a few words.

    Parameters
    ----------
    inputs, outputs : list of dict
        Tensor details with ``shape`` (list of int) and ``dtype`` (numpy dtype name).
    """
    if len(inputs) != 1:
        return f"it has {len(inputs)} inputs; the app feeds exactly one, [1, N, 1] float32"
    shape, dtype = inputs[0]["shape"], inputs[0]["dtype"]
    if len(shape) != 3 or shape[0] != 1 or shape[2] != 1 or shape[1] < 1:
        hint = (" (that is ExecuTorch's layout [1, 1, N])"
                if len(shape) == 3 and shape[:2] == [1, 1] and shape[2] > 1 else "")
        return f"its input is {shape} {dtype}, the app feeds [1, N, 1] float32{hint}"
    if dtype != "float32":
        return f"its input is {shape} {dtype}, the app feeds float32 (g)"
    if not outputs:
        return "it has no output"
    if outputs[0]["shape"] != [1, 2] or outputs[0]["dtype"] != "float32":
        return (f"its output is {outputs[0]['shape']} {outputs[0]['dtype']}, the app reads "
                "[1, 2] float32 (p = output[0][1])")
    return None


class TfliteRunner:
    """A .tflite model in LiteRT, called as the app calls it.

    Parameters
    ----------
    path : str or Path
        A TFLite flatbuffer with one float32 input of shape [1, N, 1] and a first output of
        shape [1, 2] float32.

    Attributes
    ----------
    path : Path
    input_size : int
        N, the window length in samples (the models index's ``input_size``).
    input_shape : tuple of int
        The model's input shape, ``(1, N, 1)``.
    output_shape : tuple of int
        ``(1, 2)``.

    Raises
    ------
    InputError
        If ai-edge-litert is not installed, the interpreter refuses the file, the input is not
        [1, N, 1] float32, or the output is not [1, 2] float32; one line naming the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._interpreter = load_interpreter(self.path)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        problem = app_interface_problem([tensor_facts(d) for d in inputs],
                                        [tensor_facts(d) for d in outputs])
        if problem:
            raise InputError(f"{self.path} does not fit the app's TFLite call: {problem}")
        self._input = inputs[0]["index"]
        self._output = outputs[0]["index"]
        self.input_shape: tuple[int, ...] = tuple(int(v) for v in inputs[0]["shape"])
        self.output_shape: tuple[int, ...] = tuple(int(v) for v in outputs[0]["shape"])
        self.input_size: int = self.input_shape[1]

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """The raw output for one window.

        Parameters
        ----------
        window : np.ndarray of shape (1, 1, N), float32
            osdml's window layout, acceleration magnitude in g; fed to the model reshaped to
            [1, N, 1], as the app fills its ``float[1][N][1]`` input.

        Returns
        -------
        np.ndarray of shape (1, 2), float32
            The model's output as it is (probabilities for a model that fits the app).

        Raises
        ------
        InputError
            If the window is not (1, 1, N) float32 (one line: expected and got).
        """
        x = np.asarray(window)
        if tuple(x.shape) != (1, 1, self.input_size) or x.dtype != np.float32:
            raise InputError(f"{self.path}: expected a window (1, 1, {self.input_size}) float32, "
                             f"got {tuple(x.shape)} {x.dtype}")
        self._interpreter.set_tensor(self._input,
                                     np.ascontiguousarray(x.reshape(self.input_shape)))
        with silenced_stderr():  # the delegate may note itself on the first invoke
            self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output), np.float32, copy=True)

    def p(self, window: np.ndarray) -> np.float32:
        """p(seizure) as the app reads it: ``output[0][1]``, no softmax.

        Parameters
        ----------
        window : np.ndarray of shape (1, 1, N), float32

        Returns
        -------
        np.float32

        Raises
        ------
        InputError
            If the window is not (1, 1, N) float32.
        """
        return np.float32(self(window)[0, 1])

    def outputs(self, windows: np.ndarray) -> np.ndarray:
        """Raw outputs for many windows, run one at a time as the app runs them.

        Parameters
        ----------
        windows : np.ndarray of shape (n, 1, N), float32

        Returns
        -------
        np.ndarray of shape (n, 2), float32

        Raises
        ------
        InputError
            If the windows are not (n, 1, N) float32.
        """
        if not len(windows):
            return np.empty((0, 2), np.float32)
        return np.concatenate([self(windows[i:i + 1]) for i in range(len(windows))])


def describe_tflite(path: str | Path) -> dict[str, Any]:
    """What a .tflite holds, for ``osdml inspect``: inputs and outputs (name, shape, dtype,
    quantization), operators, signatures, and whether it fits the app's TFLite call.

    Without ai-edge-litert, ``forward`` says so (the file's kind, size and sha256 need no
    runtime).

    Returns
    -------
    dict
        ``forward`` ({"inputs": [...], "outputs": [...]} or {"error": ...}), ``operators``,
        ``signatures``, ``runtime`` and ``app`` (``fits``: bool, ``detail``: str).

    Raises
    ------
    InputError
        If LiteRT refuses the file.
    """
    path = Path(path)
    try:
        interpreter = load_interpreter(path)
    except InputError as e:
        if "not installed" not in str(e):
            raise
        return {"forward": {"error": f"not read: the LiteRT runtime is not installed "
                                     f"({INSTALL_HINT})"}}
    inputs = [tensor_facts(d) for d in interpreter.get_input_details()]
    outputs = [tensor_facts(d) for d in interpreter.get_output_details()]
    out: dict[str, Any] = {"forward": {"inputs": inputs, "outputs": outputs},
                           "runtime": f"LiteRT (ai-edge-litert {litert_version()})"}
    try:  # a private method of the interpreter; informative only
        out["operators"] = sorted({o["op_name"] for o in interpreter._get_ops_details()})
    except Exception:
        pass
    with contextlib.suppress(Exception):
        out["signatures"] = interpreter.get_signature_list()
    problem = app_interface_problem(inputs, outputs)
    out["app"] = {"fits": problem is None,
                  "detail": (f"fits the app's TFLite call: input_size {inputs[0]['shape'][1]} "
                             "in the models index; the app takes p = output[0][1] as it is "
                             "and applies no softmax of its own, so the outputs must be "
                             "probabilities (`osdml validate` checks that)")
                  if problem is None else f"does not fit the app's TFLite call: {problem}"}
    return out


def random_windows(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """`n` windows (n, 1, samples) float32 in g: 1 g plus Gaussian noise of amplitudes spread
    from 0.05 g to 1 g (log-uniform), the first one still (1 g exactly)."""
    rng = np.random.default_rng(seed)
    amp = 10 ** rng.uniform(-1.3, 0.0, size=(n, 1, 1))
    x = 1.0 + amp * rng.standard_normal((n, 1, samples))
    if n:
        x[0] = 1.0
    return x.astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def contract_failure(outputs: np.ndarray) -> str | None:
    """None when every output row is a finite probability pair (each value in [0, 1], the
    pair summing to 1 within 1e-3), else one line saying what the outputs are instead.

    Parameters
    ----------
    outputs : np.ndarray of shape (n, 2), float32
    """
    n = len(outputs)
    finite = np.isfinite(outputs).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        return (f"{int((~finite).sum())} of {n} outputs are not finite (NaN or inf; e.g. "
                f"{_pair(outputs[i])}): the app would take that as p")
    in_range = ((outputs >= -PROB_RANGE_TOL) & (outputs <= 1 + PROB_RANGE_TOL)).all(axis=1)
    sums = np.abs(outputs.astype(np.float64).sum(axis=1) - 1.0)
    pair = in_range & (sums <= PROB_SUM_TOL)
    if pair.all():
        return None
    i = int(np.argmin(pair))
    if not in_range.all():
        lo, hi = float(outputs.min()), float(outputs.max())
        return (f"the model outputs logits, not probabilities: outputs range over "
                f"[{lo:.3g}, {hi:.3g}] (e.g. {_pair(outputs[i])}) on {n} windows; the app "
                "takes output[0][1] as p with no softmax, so the model must end in a softmax")
    return (f"the outputs are in [0, 1] but are not a probability pair: {int((~pair).sum())} "
            f"of {n} do not sum to 1 (e.g. {_pair(outputs[i])}, off by {float(sums[i]):.3g}); "
            "the app takes output[0][1] as p, so the model must end in a 2-class softmax")


def _pair(row: np.ndarray) -> str:
    return f"[{float(row[0]):.4g}, {float(row[1]):.4g}]"


def check_tflite(path: str | Path, windows: np.ndarray, source: str, *,
                 reference: Callable[[np.ndarray], np.ndarray] | None = None,
                 reference_name: str | None = None, atol: float = 1e-4,
                 threshold: float = APP_THRESHOLD) -> dict[str, Any]:
    """Run a .tflite on `windows` as the app does and check the app's contract.

    Passes when every output is a finite probability pair (the app reads output[0][1] as p,
    no softmax), p is not the same on every one of different windows (a model that never
    changes its answer: fed the wrong units, say) and, with a `reference`, when p is within
    `atol` of the reference's
    ``softmax(logits)[1]`` on every window with every decision (p > `threshold`, the app's
    rule) the same.

    Parameters
    ----------
    path : str or Path
        The .tflite file.
    windows : np.ndarray of shape (n, 1, N), float32
        Windows in g, N the model's input_size.
    source : str
        What the windows are, for the summary.
    reference : callable, optional
        ``run(window (1, 1, N) float32) -> logits (1, 2)``: the model it was made from.
    reference_name : str, optional
        The reference's file, for the summary.
    atol : float
        Largest p difference allowed against the reference.
    threshold : float
        Decision threshold (the app: p > threshold).

    Returns
    -------
    dict
        ``path``, ``kind`` ("tflite"), ``passed``, ``summary``, ``failure`` (None or one line),
        ``windows``, ``input_size``, ``p_min``, ``p_max``, ``alarm_share`` (share of windows
        with p > threshold) and, with a reference, ``reference``,
        ``max_prob_diff`` and ``decision_agreement``.

    Raises
    ------
    InputError
        If the file cannot be run (see ``TfliteRunner``), or the windows or the reference do
        not fit it.
    """
    runner = TfliteRunner(path)
    out = runner.outputs(windows)
    result: dict[str, Any] = {"path": str(path), "kind": "tflite", "format": "tflite",
                              "runtime": f"LiteRT (ai-edge-litert {litert_version()})",
                              "input_size": runner.input_size, "windows": len(windows),
                              "threshold": threshold, "failure": None}
    p = out[:, 1].astype(np.float64)
    result.update(p_min=float(p.min()), p_max=float(p.max()),
                  alarm_share=float(np.mean(p > threshold)))
    failure = contract_failure(out)
    summary = (f"[1, {runner.input_size}, 1] float32 -> [1, 2] "
               + ("probability pairs" if failure is None else "NOT probability pairs")
               + f" on {source}; p in [{result['p_min']:.3g}, {result['p_max']:.3g}], "
               f"p > {threshold:g} on {result['alarm_share']:.1%} of windows")
    differ = len(p) > 1 and bool(np.ptp(windows.reshape(len(windows), -1), axis=0).any())
    if failure is None and differ and float(p.max() - p.min()) < 1e-6:
        failure = (f"p is {float(p[0]):.3g} on every one of {len(p)} different windows, still "
                   "or moving: as the app feeds it (g) the model never changes its answer; a "
                   "model made for milli-g (what app versions before V4.4.0 fed TFLite "
                   "models) does that (osdml replay --tflite-mg runs it on milli-g)")
    if failure is None and reference is not None:
        ref = np.concatenate([np.asarray(reference(windows[i:i + 1].copy()), np.float32)
                              for i in range(len(windows))])
        if ref.ndim != 2 or ref.shape[1] != 2:
            raise InputError(f"the reference {reference_name} gives outputs of shape "
                             f"{tuple(ref.shape[1:])} per window, not 2 logits")
        p_ref = _softmax(ref)[:, 1]
        diff = float(np.abs(p_ref - p).max())
        agree = float(np.mean((p_ref > threshold) == (p > threshold)))
        result.update(reference=reference_name, max_prob_diff=diff, decision_agreement=agree)
        summary += (f"; against softmax({Path(str(reference_name)).name})[1]: max p diff "
                    f"{diff:.2g}, decisions agree {agree:.1%}")
        if diff > atol:
            failure = f"p differs from the reference by up to {diff:.3g} (tolerance {atol:g})"
        elif agree < 1.0:
            failure = (f"decisions at p > {threshold:g} agree with the reference on {agree:.1%}"
                       " of windows (needs 100%)")
    if failure:
        summary += f": {failure}"
    result.update(passed=failure is None, failure=failure, summary=summary)
    return result
