"""The app's models index (``index.json``): the entry for a .pte, publishing it, and checking an
index as the phone reads it.

The app downloads a JSON array ``index.json`` from its model server, then the files its entries
name (``alg/MlModelManager.java``, ``alg/SdAlgMl.java`` at commit 1df556f; APP_CONTRACT.md,
"The models index"). What it does with an entry, which this module mirrors:

- ``filterValidModels``: an entry that is not an object, or whose ``name`` or ``fname`` is
  missing or empty (``optString``, which turns a number into ``"5"`` and null into ``"null"``),
  is dropped;
- ``isDeviceCompatible``: ``framework`` (default ``"tflite"``) ``"pytorch"`` needs a 64-bit
  process; every ``min_cpu_features`` entry must be in /proc/cpuinfo's Features (lower case;
  ``dotprod`` may stand for ``asimddp``); a value that is not an array is ignored;
- ``loadAllActiveModels`` and ``SdAlgMl``: ``input_format_val`` (default 1; only 1 runs, any
  other gives p = 0) and ``input_size`` (default **125**) by ``optInt``; ``"tflite"`` files are
  loaded by TFLite, ``"pytorch"`` or ``"executorch"`` by ExecuTorch's ``Module.load`` (which does
  not read the program: a file that is not one fails at every ``forward``, p = 0); any other
  framework is never loaded;
- ``applyRecommendedThresholdsFromModel``: ``accel_std_threshold_pct`` and
  ``seizure_probability_threshold_pct`` by ``optDouble``, **in percent**, clamped to 0..100 (a
  fraction is not converted: 0.5 means 0.5 %), NaN or a non-number ignored;
- ``registerInstalledModel``: one installed model per ``fname`` (a second entry with the same
  ``fname`` replaces the first on install). Keys the app does not know are kept and ignored.

No checksum is verified, and a .pte entry without ``input_size`` gets 125 samples: its
``forward`` fails, the error is caught, and the model reports p = 0 forever, silently. Hence
``publish`` reads the input length from the program itself and ``check_index`` compares it
with every entry it can.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from osdml.errors import InputError
from osdml.export import sniff as sn
from osdml.fileio import atomic_write, write_json
from osdml.outdir import hold, with_locks
from osdml.spec import ModelSpec

INDEX_NAME = "index.json"  # the file the app downloads (MlModelManager.mModelIndexFname)
FRAMEWORK = "pytorch"  # the app's name for ExecuTorch (doc/ML_Model_JSON_Format.md)
INPUT_FORMAT, INPUT_FORMAT_VAL = "1d_mag", 1  # the only input format the app runs
APP_INPUT_SIZE = 125  # optInt("input_size", 125)
APP_GATE_PCT, APP_THRESHOLD_PCT = 5.0, 50.0  # the app's defaults, percent
TFLITE = sn.TFLITE
DROPPED, MISREAD, P_ZERO, UNCHECKED = "dropped", "misread", "p=0", "unchecked"
FAILING = (DROPPED, MISREAD, P_ZERO)  # severities that fail a check; UNCHECKED is a note
_URL_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")
# what Java's Double.parseDouble accepts (decimal forms; hexadecimal ones are left out)
_JAVA_DOUBLE = re.compile(r"^[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)$")

# Features an arm64 kernel lists in /proc/cpuinfo for a 64-bit process (hwcap_str in
# arch/arm64/kernel/cpuinfo.c, Linux 6.x)
ARM64_FEATURES = frozenset("""
fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc
dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg gcs
dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm
svebf16 i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme smei16i64 smef64f64 smei8i32 smef16f32
smeb16f32 smef32f32 smefa64 wfxt ebf16 sveebf16 cssc rprfm sve2p1 sme2 sme2p1 smei16i32
smebi32i32 smeb16b16 smef16f16 mops hbc sveb16b16 lrcpc3 lse128 fpmr lut faminmax f8cvt f8fma
f8dp4 f8dp2 f8e4m3 f8e5m2 smelutv2 smef8f16 smef8f32 smesf8fma smesf8dp4 smesf8dp2 poe cmpbr
fprcvt f8mm8 f8mm4 svef16mm sveeltperm sveaes2 svebfscale sve2p2 sme2p2 smesbitperm smeaes
smesfexpa smestmop smesmop4
""".split())
# ... and for a 32-bit process (compat_hwcap_str): never seen by a 64-bit app ("pytorch")
ARM32_FEATURES = frozenset("""
swp half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt lpae evtstrm fphp asimdhp
asimddp asimdfhm asimdbf16 i8mm aes pmull sha1 sha2 crc32 sb ssbs
""".split())
FEATURE_ALIASES = {"dotprod": "asimddp"}  # MlModelManager.hasCpuFeature


@dataclass
class Finding:
    """What the app would do wrong with one index entry.

    Attributes
    ----------
    entry : int
        Position of the entry in the index array (0-based).
    name : str or None
        The entry's name as the app reads it (None when the entry is not an object).
    severity : {"dropped", "misread", "p=0", "unchecked"}
        ``dropped``: the app skips the entry or never loads the model; ``misread``: it reads
        a value other than the one meant; ``p=0``: the model loads and reports p = 0 forever;
        ``unchecked``: something could not be checked here (not a failure).
    message : str
        One line: what the entry says, what the app does with it, what to write instead.
    """

    entry: int
    name: str | None
    severity: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PublishResult:
    """What ``publish`` wrote.

    Attributes
    ----------
    entry : dict
        The index entry written.
    index : str
        The index file.
    position : int
        The entry's position in the index (0-based).
    replaced : bool
        Whether an existing entry (the one with this name or this fname) was replaced.
    file : str
        Where the .pte lies beside the index.
    copied : bool
        False when the file beside the index already was the .pte (or an identical copy).
    warnings : list of str
        Conditions the publication survived (no validation record, thresholds not tuned).
    """

    entry: dict[str, Any]
    index: str
    position: int
    replaced: bool
    file: str
    copied: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- the entry

@dataclass
class _Model:
    """A .pte read for publishing: its facts, its spec and its sidecar."""

    path: Path
    size_bytes: int
    sha256: str
    input_size: int
    spec: ModelSpec
    sidecar: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def index_entry(pte_path: str | Path, *, name: str | None = None, version: str | None = None,
                description: str | None = None, recommended: bool = False,
                fname: str | None = None) -> dict[str, Any]:
    """The app's index entry for an osdml .pte, with every field the app reads.

    Parameters
    ----------
    pte_path : path-like
        An ExecuTorch program with an osdml spec (constant method ``spec_json`` or the
        sidecar ``<file>.json``).
    name : str, optional
        Shown in the app's model list; default: the file's stem.
    version : str, optional
        Default: the date the spec was created (``YYYY-MM-DD``), else ``"1"``.
    description : str, optional
        Default: built from the spec (architecture, input, training data, app settings).
    recommended : bool, default=False
        The app offers the first recommended compatible entry as an update.
    fname : str, optional
        The file name on the model server (and the app's key for an installed model); default:
        the file's own name.

    Returns
    -------
    dict
        ``name``, ``fname``, ``framework`` ("pytorch"), ``input_format`` ("1d_mag"),
        ``input_format_val`` (1), ``input_size`` (samples, from the program's input),
        ``recommended``, ``version``, ``description``, ``size`` (as the app shows it, "402 kB"),
        ``min_cpu_features`` (from the sidecar; usually empty), ``accel_std_threshold_pct`` and
        ``seizure_probability_threshold_pct`` (percent, from ``spec.app_settings`` or the
        app's defaults 5 and 50), and two keys the app ignores: ``thresholds_tuned`` and
        ``sha256``.

    Raises
    ------
    InputError
        If the file is not a .pte, has no osdml spec, does not take (1, 1, N) float32 or does
        not output two finite logits (one line naming the file).
    """
    entry, _ = _entry(_read_model(Path(pte_path)), name=name, version=version,
                      description=description, recommended=recommended, fname=fname)
    return entry


def _entry(model: _Model, *, name: str | None, version: str | None, description: str | None,
           recommended: bool, fname: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The entry and the notes on how its values were chosen."""
    spec, notes = model.spec, []
    gate, threshold, tuned, how = _app_thresholds(model.path, spec.app_settings)
    if how:
        notes.append(how)
    if name is not None and not name.strip():
        raise InputError(f"cannot publish {model.path}: the name is empty (the app drops an "
                         "entry without a name); give --name")
    if fname is not None and (not fname.strip() or Path(fname).name != fname
                              or fname in (".", "..")):
        raise InputError(f"cannot publish {model.path}: --fname {fname!r} must be a plain file "
                         "name (the app downloads it beside the index)")
    features = (model.sidecar or {}).get("min_cpu_features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InputError(f"cannot publish {model.path}: its sidecar's min_cpu_features "
                         f"{features!r} is not a list of feature names")
    if unknown_features(features):
        raise InputError(f"cannot publish {model.path}: its sidecar's min_cpu_features "
                         f"{unknown_features(features)} are not features any ARM64 "
                         "/proc/cpuinfo lists; the app would skip the model on every phone")
    entry = {
        "name": model.path.stem if name is None else name,
        "fname": model.path.name if fname is None else fname,
        "framework": FRAMEWORK,
        "input_format": INPUT_FORMAT,
        "input_format_val": INPUT_FORMAT_VAL,
        "input_size": model.input_size,  # without it the app feeds 125 samples: p = 0 forever
        "recommended": bool(recommended),
        "version": version if version is not None else (spec.created_utc[:10] or "1"),
        "description": description if description is not None
        else describe(spec, model.input_size, tuned=tuned),
        "size": app_size(model.size_bytes),
        "min_cpu_features": features,
        "accel_std_threshold_pct": gate,  # percent: the app does not convert fractions
        "seizure_probability_threshold_pct": threshold,
        # osdml's own keys: the app reads only the keys above and ignores the others
        "thresholds_tuned": tuned,
        "sha256": model.sha256,
    }
    return entry, notes


def _app_thresholds(path: Path, settings: dict[str, Any]) -> tuple[float, float, bool, str]:
    """(gate %, threshold %, tuned, note) from a spec's ``app_settings``. Values are rounded
    to 0.01 %, as the app stores them (``toPreferencePercentString``)."""
    values, missing = {}, []
    for key, default in (("gate_pct", APP_GATE_PCT), ("threshold_pct", APP_THRESHOLD_PCT)):
        v = settings.get(key)
        if v is None:
            missing.append(key)
            v = default
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 100:
            raise InputError(f"cannot publish {path}: its spec's app_settings {key}={v!r} is not "
                             "a percentage in [0, 100]")
        values[key] = _pct(v)
    if values["threshold_pct"] <= 1:
        raise InputError(f"cannot publish {path}: its spec's app_settings threshold_pct="
                         f"{values['threshold_pct']:g} looks like a fraction; the app reads "
                         f"percent (p > {values['threshold_pct']:g} %); tune again or fix the "
                         "spec")
    note, given = "", settings.get("rule") == "none"  # tune's rule "none": the config's values
    if len(missing) == 2:
        note = (f"{path.name}: the spec has no tuned app settings (app_settings is empty): the "
                f"entry recommends the app's defaults, movement gate {APP_GATE_PCT:g} % and "
                f"threshold {APP_THRESHOLD_PCT:g} %, not tuned for this model")
    elif missing:
        note = (f"{path.name}: app_settings has no {missing[0]}: the entry recommends the app's "
                "default for it")
    elif given:
        note = (f"{path.name}: app_settings were given (tuning rule none), not tuned: the entry "
                f"recommends them as they are")
    elif isinstance(settings.get("warning"), str) and settings["warning"]:
        note = f"{path.name}: tuning: {settings['warning']}"
    elif 0 < values["gate_pct"] < 1:
        note = (f"{path.name}: movement gate {values['gate_pct']:g} % is below 1 %; osdml "
                "publish --check reports such a value as a possible fraction")
    return values["gate_pct"], values["threshold_pct"], not missing and not given, note


def _pct(v: float) -> int | float:
    v = round(float(v), 2)
    return int(v) if v.is_integer() else v


def app_size(size_bytes: int) -> str:
    """The file size as the app shows it (``"402 kB"``, ``"2.4 MB"``; 1 kB = 1024 bytes)."""
    if size_bytes < 1024:
        return f"{size_bytes} bytes"
    if size_bytes < 1024 * 1024:
        return f"{size_bytes / 1024:.0f} kB"
    return f"{size_bytes / 1024 / 1024:.1f} MB"


def describe(spec: ModelSpec, input_size: int, *, tuned: bool | None = None) -> str:
    """The app's description of a model, from its spec: architecture, input, training data,
    test result, and the app settings it was tuned for."""
    rate = spec.sample_rate_hz
    arch = f"{spec.arch} CNN"
    members = spec.arch_kwargs.get("members")
    if spec.arch == "hd_ensemble" and isinstance(members, list) and members:
        kinds = sorted({str(m.get("arch")) for m in members if isinstance(m, dict)})
        arch = (f"Harrell-Davis ensemble (quantile {spec.arch_kwargs.get('quantile')}) of "
                f"{len(members)} {'/'.join(kinds)} CNNs")
    parts = [f"{arch} ({spec.quantization or 'fp32'}), {input_size / rate:g} s of "
             f"acceleration magnitude ({input_size} samples at {rate:g} Hz)"]
    t = spec.training
    events, files = t.get("events"), t.get("files")
    if isinstance(events, dict) and isinstance(events.get("train"), int):
        where = f" from {len(files)} OSDB file(s)" if isinstance(files, list) else ""
        parts.append(f"trained on {events['train']} events{where}, split {t.get('split', '?')}")
    alarm = (spec.metrics.get("test_events") or {}).get("alarm") or {}
    if isinstance(alarm.get("sensitivity"), int | float):
        parts.append(f"test event sensitivity {alarm['sensitivity']:.0%}")
    app = spec.app_settings
    if tuned is None:
        tuned = (app.get("threshold_pct") is not None and app.get("gate_pct") is not None
                 and app.get("rule") != "none")
    if tuned:
        extra = "".join(f", {label} {app[k]:g} s" for k, label in (
            ("warn_s", "WarnTime"), ("alarm_s", "AlarmTime"))
            if isinstance(app.get(k), int | float))
        if isinstance(app.get("voting"), str):
            extra += f", voting {app['voting']}"
        val = app.get("validation") if isinstance(app.get("validation"), dict) else {}
        if isinstance(val.get("sensitivity"), int | float) and isinstance(val.get("far_24h"),
                                                                          int | float):
            extra += (f" (validation: sensitivity {val['sensitivity']:.0%}, "
                      f"{val['far_24h']:.2g} false alarms / 24 h)")
        parts.append(f"app settings tuned on validation: threshold {_pct(app['threshold_pct'])} "
                     f"%, movement gate {_pct(app['gate_pct'])} %{extra}")
    else:
        parts.append(f"thresholds: the app's defaults ({APP_THRESHOLD_PCT:g} %, movement gate "
                     f"{APP_GATE_PCT:g} %), not tuned")
    return "; ".join(parts)


def _read_model(path: Path) -> _Model:
    """Read a .pte for publishing; refuse what the app could not run (one line each)."""
    require_pte(path)
    from osdml.export.pte import PteRunner

    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    sidecar = _read_sidecar(path, sha)
    if isinstance(sidecar, dict) and isinstance(sidecar.get("spec"), dict) \
            and sidecar["spec"].get("input", "magnitude") != "magnitude":
        _refuse_xyz(path)
    runner = PteRunner(path)
    shape, dtype = runner.input_shape, runner.input_dtype
    if len(shape) == 3 and shape[:2] == (1, 3):
        _refuse_xyz(path)
    if len(shape) != 3 or shape[:2] != (1, 1) or shape[2] < 1 or dtype != "float32":
        raise InputError(f"cannot publish {path}: its input is {shape} {dtype}; the app feeds "
                         "(1, 1, N) float32 (N samples of acceleration magnitude)")
    n = int(shape[2])
    spec = _model_spec(path, runner, sidecar)
    _require_two_logits(path, runner, n)
    notes = []
    if spec.window_samples != n:
        notes.append(f"{path.name}: the spec says {spec.window_samples} samples but the program "
                     f"takes {n}; the entry says {n}")
    return _Model(path, len(data), sha, n, spec, sidecar, notes)


def _refuse_xyz(path: Path) -> None:
    from osdml.spec import XYZ_REFUSED

    raise InputError(XYZ_REFUSED.format(what="publish", path=path) + "; xyz models are for "
                     "research ([data.windows] input = \"magnitude\" trains one the app runs)")


def require_pte(path: str | Path) -> None:
    """Refuse, in one line naming what it is instead, a file that is not an ExecuTorch program.

    Raises
    ------
    InputError
        If `path` is missing, a folder, a .tflite, .ptl, .pt, .bpte, an HTML page, JSON, ...
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot publish {path}: it is a folder; give the .pte file")
    try:
        kind = sn.sniff(path)
    except InputError as e:
        raise InputError(str(e).replace("cannot read model:", "cannot publish:", 1)) from None
    if kind.kind == sn.PTE:
        return
    hint = ("publish the .pte it was made from" if kind.kind == sn.BPTE else
            "osdml publishes the ExecuTorch programs it makes; the app runs a .tflite from an "
            'entry with "framework": "tflite"' if kind.kind == sn.TFLITE else
            f"convert it first (osdml convert {path})")
    raise InputError(f"cannot publish {path}: it is {kind.description}, not an ExecuTorch "
                     f"program (.pte) the app can load; {hint}")


def _read_sidecar(path: Path, sha: str) -> dict[str, Any] | None:
    side = Path(str(path) + ".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"cannot publish {path}: its sidecar {side} is not valid JSON "
                         f"({str(e).splitlines()[0]}); re-export the model") from None
    if not isinstance(data, dict):
        raise InputError(f"cannot publish {path}: its sidecar {side} is not a JSON object")
    recorded = data.get("sha256")
    if isinstance(recorded, str) and recorded != sha:
        raise InputError(f"cannot publish {path}: its sidecar {side.name} describes another file "
                         f"(sha256 {recorded[:12]}..., the file is {sha[:12]}...); its records "
                         "do not apply; re-export, or delete the stale sidecar")
    return data


def _model_spec(path: Path, runner, sidecar: dict[str, Any] | None) -> ModelSpec:
    """The spec in the sidecar when it has one (tuning may update it after export), else the
    one in the program (``spec_json``)."""
    if sidecar is not None and isinstance(sidecar.get("spec"), dict):
        return ModelSpec.from_dict(sidecar["spec"], source=f"{path}.json (spec)")
    try:
        text = runner.constant("spec_json")
    except Exception:  # no spec_json method: a program osdml did not make
        text = None
    if not isinstance(text, str):
        raise InputError(f"cannot publish {path}: it has no osdml spec (no spec_json method and "
                         "no sidecar with a spec), so its input and thresholds are unknown; "
                         "convert it with osdml convert")
    return ModelSpec.from_json(text, source=f"{path} (spec_json)")


def _require_two_logits(path: Path, runner, n: int) -> None:
    import numpy as np

    try:
        out = np.asarray(runner(np.ones((1, 1, n), np.float32)))
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot publish {path}: forward fails on a window of ones "
                         f"({type(e).__name__}: {str(e).strip()[:150]})") from None
    if out.shape != (1, 2):
        raise InputError(f"cannot publish {path}: it outputs {tuple(out.shape)}; the app needs two "
                         "logits (1, 2) and applies softmax to them")
    if not np.isfinite(out).all():
        raise InputError(f"cannot publish {path}: its logits on a window of ones are not finite "
                         f"({out.ravel().tolist()})")


# --------------------------------------------------------------------------- publish

@with_locks
def publish(pte_path: str | Path, index_path: str | Path, *, name: str | None = None,
            version: str | None = None, description: str | None = None,
            recommended: bool = False, replace: bool = False,
            fname: str | None = None, _locks=None) -> PublishResult:
    """Add (or replace) a .pte's entry in an index and copy the file beside it.

    The .pte is copied to ``index_path.parent / fname`` first, then the index is written
    (both atomically: a temporary name, then a rename), so an index never names a file that
    is not complete.

    Parameters
    ----------
    pte_path : path-like
        An osdml .pte (see ``index_entry``).
    index_path : path-like
        The models index, a JSON array; created when missing.
    name, version, description, recommended, fname
        As in ``index_entry``.
    replace : bool, default=False
        Replace the one entry that has this name or this fname (and a different file of that
        name beside the index).

    Returns
    -------
    PublishResult

    Raises
    ------
    InputError
        One line naming the file and the problem: not a .pte (what it is instead), no osdml
        spec, recorded validation failed (sidecar ``validation`` or the run folder's
        ``validation.json``), the sidecar's ``phone_runtime`` record says it does not load in
        the phone's runtime, input not (1, 1, N) float32, output not two finite logits, name or
        fname used by another entry (without `replace`; with it, when they are used by two
        different entries), a different file of that name beside the index (without
        `replace`), an index that is not a JSON array (never overwritten), or an index that
        another process is writing (``osdml.outdir.hold``: one line naming it).
    """
    pte_path, index_path = Path(pte_path), Path(index_path)
    _locks.enter_context(hold(index_path, f"osdml publish {pte_path} --index {index_path}"))
    entries = read_index(index_path, missing_ok=True)
    model = _read_model(pte_path)
    warnings = list(model.notes) + _records(model)
    entry, notes = _entry(model, name=name, version=version, description=description,
                          recommended=recommended, fname=fname)
    warnings += notes
    position, replaced = _position(entries, entry, index_path, replace)
    dest = index_path.parent / entry["fname"]
    same = dest.is_file() and (dest.resolve() == pte_path.resolve()
                               or _sha256(dest) == model.sha256)
    if dest.exists() and not same and not replace:
        raise InputError(f"cannot publish {pte_path}: {dest} exists and is a different file; "
                         "use --replace to overwrite it")
    warnings += _index_warnings(entries, entry, index_path, position)
    if replaced and isinstance(entries[position], dict):
        old_fname = java_string(entries[position].get("fname", ""))
        if old_fname and old_fname != entry["fname"] and \
                (index_path.parent / old_fname).is_file():
            warnings.append(f"the replaced entry's file {old_fname} stays beside the index "
                            "(no entry names it now; delete it if nothing else uses it)")
    existed = dest.exists()
    if not same:
        with open(pte_path, "rb") as src, atomic_write(dest, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    if replaced:
        entries[position] = entry
    else:
        entries.append(entry)
    try:
        write_json(index_path, entries)
    except BaseException:  # the index was not written: take back a file nothing names
        if not same and not existed:
            dest.unlink(missing_ok=True)
        raise
    return PublishResult(entry, str(index_path), position, replaced, str(dest), not same,
                         warnings)


def read_index(path: str | Path, *, missing_ok: bool = False, strict: bool = True
               ) -> list[Any]:
    """The entries of a models index (a JSON array).

    Parameters
    ----------
    missing_ok : bool, default=False
        A missing file is an empty index.
    strict : bool, default=True
        Refuse NaN and Infinity (JSON has no such values; publish could not write them back).
        Without it they are read as numbers, as the app's parser does.

    Raises
    ------
    InputError
        If the file is not JSON, not an array, a folder, or missing (unless `missing_ok`).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"models index {path} is a folder; give the index.json file")
    if not path.exists():
        if missing_ok:
            return []
        raise InputError(f"models index {path} does not exist")

    def constant(value: str):
        raise ValueError(f"{value} is not JSON")

    try:
        data = json.loads(path.read_text(encoding="utf-8"),
                          parse_constant=constant if strict else None)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"models index {path} is not valid JSON ({str(e).splitlines()[0]}); "
                         "fix it by hand (it is left as it is)") from None
    if not isinstance(data, list):
        raise InputError(f"models index {path} holds {_json_type(data)}, not an array of "
                         "entries; the app reads only an array (it is left as it is)")
    return data


def _records(model: _Model) -> list[str]:
    """Refuse a file whose recorded validation or phone-runtime check failed; warn when there
    is no validation record."""
    path, side = model.path, model.sidecar or {}
    phone = side.get("phone_runtime")
    phone = phone if isinstance(phone, dict) else {}
    runtime = phone.get("runtime") or "ExecuTorch 1.0.1"
    why = _why(phone)
    if phone.get("loads") is False:
        raise InputError(f"cannot publish {path}: its sidecar records that it does not load in "
                         f"the phone's runtime ({runtime}{': ' + why if why else ''}); the app "
                         "would report p = 0 forever; export it so that it loads there")
    if phone.get("agrees") is False:
        raise InputError(f"cannot publish {path}: its sidecar records that the phone's runtime "
                         f"({runtime}) gives other logits than the one it was exported with"
                         f"{' (' + why + ')' if why else ''}")
    warnings = []
    if phone.get("loads") is not True:
        warnings.append(f"{path.name}: not checked in the phone's runtime ({runtime})"
                        + (f": {phone['note']}" if isinstance(phone.get("note"), str) else ""))
    records = []
    validation = side.get("validation")
    if isinstance(validation, dict) and isinstance(validation.get("passed"), bool):
        records.append(("its sidecar", validation))
    run_file = path.parent / "validation.json"
    if run_file.is_file():
        try:
            results = json.loads(run_file.read_text(encoding="utf-8")).get("results", [])
        except (ValueError, UnicodeDecodeError, AttributeError):
            results = []
        for r in results if isinstance(results, list) else []:
            if isinstance(r, dict) and isinstance(r.get("passed"), bool) \
                    and Path(str(r.get("path", ""))).name == path.name:
                records.append((f"{run_file}", r))
    for where, record in records:
        if record["passed"] is False:
            why = _why(record)
            raise InputError(f"cannot publish {path}: its validation failed ({where}"
                             f"{': ' + why if why else ''}); fix and re-export it")
    if not records:
        warnings.insert(0, f"{path.name}: no validation record (sidecar 'validation' or a run "
                           "folder's validation.json): nothing shows that it matches the model "
                           "it was made from; run osdml validate on it")
    return warnings


def _why(record: dict[str, Any]) -> str:
    for key in ("failure", "error", "reason", "summary", "note"):
        if isinstance(record.get(key), str) and record[key]:
            return record[key].strip().splitlines()[0][:200]
    return ""


def _position(entries: list[Any], entry: dict[str, Any], index_path: Path,
              replace: bool) -> tuple[int, bool]:
    """(position, replaced) of the new entry; refuse name or fname used by another entry."""
    name, fname = entry["name"], entry["fname"]
    by_name = [i for i, e in enumerate(entries) if isinstance(e, dict) and "name" in e
               and java_string(e["name"]) == name]
    by_fname = [i for i, e in enumerate(entries) if isinstance(e, dict) and "fname" in e
                and java_string(e["fname"]) == fname]
    if not by_name and not by_fname:
        return len(entries), False
    used = "; ".join(
        f"entry {i} has " + " and ".join(f"{what} {value!r}" for what, value, found in (
            ("name", name, by_name), ("fname", fname, by_fname)) if i in found)
        for i in sorted(set(by_name) | set(by_fname)))
    if not replace:
        fixes = [f for f, clash in (("another --name", by_name), ("another --fname (the app "
                                    "keeps one installed model per file name)", by_fname))
                 if clash]
        raise InputError(f"cannot publish into {index_path}: {used}; give "
                         f"{' and '.join(fixes)}, or --replace to replace that entry")
    targets = set(by_name) | set(by_fname)
    if len(targets) > 1:
        raise InputError(f"cannot publish into {index_path}: {used}; --replace replaces one "
                         "entry, and these are two: give another --name or --fname")
    return targets.pop(), True


def _index_warnings(entries: list[Any], entry: dict[str, Any], index_path: Path,
                    position: int) -> list[str]:
    warnings = []
    if index_path.name != INDEX_NAME:
        warnings.append(f"the app downloads {INDEX_NAME}; {index_path.name} is read only if it is "
                        f"renamed {INDEX_NAME} on the server")
    if not _URL_SAFE.match(entry["fname"]):
        warnings.append(f"fname {entry['fname']!r} has characters a URL must escape; the app "
                        "appends it to the server address as it is")
    if entry["recommended"]:
        first = next((i for i, e in enumerate(entries) if isinstance(e, dict)
                      and java_bool(e.get("recommended")) and i != position), None)
        if first is not None and first < position:
            warnings.append(f"entry {first} is recommended too and comes first: the app offers "
                            "the first recommended entry it finds")
    return warnings


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- org.json

def java_string(value: Any) -> str:
    """A JSON value as Android's ``optString`` gives it: a number as text, null as "null"."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # as Java's Double.toString, for the usual magnitudes
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e7:
            return f"{value:.1f}"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def java_double(value: Any) -> float | None:
    """``optDouble`` without its fallback: numbers and numeric strings, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _JAVA_DOUBLE.match(value.strip()):
        return float(value.strip().rstrip("fFdD"))
    return None


def java_int(value: Any) -> int | None:
    """``optInt`` without its fallback: ints, doubles (truncated) and numeric strings."""
    v = value if isinstance(value, int) and not isinstance(value, bool) else java_double(value)
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return 0
        v = max(min(v, 2**31 - 1), -(2**31))
    return int(v)


def java_bool(value: Any) -> bool | None:
    """``optBoolean`` without its fallback: booleans and the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


# --------------------------------------------------------------------------- check

def check_index(index_path: str | Path) -> list[Finding]:
    """Read an index as the app would and list what it would drop, misread or run with
    p = 0 forever, entry by entry.

    Files named by ``fname`` that lie beside the index are opened too: their kind against
    ``framework``, their real input length against ``input_size`` (.pte in the ExecuTorch
    runtime; .tflite with ``ai_edge_litert`` when it is installed).

    Parameters
    ----------
    index_path : path-like
        The models index (a JSON array).

    Returns
    -------
    list of Finding
        In entry order; empty when the app reads every entry as written. Severity
        ``unchecked`` marks what could not be checked here (a file not beside the index, a
        .tflite without ``ai_edge_litert``); it is not a failure.

    Raises
    ------
    InputError
        If the index is missing, not valid JSON or not an array (the app reads nothing).
    """
    index_path = Path(index_path)
    entries = read_index(index_path, strict=False)
    findings: list[Finding] = []
    seen_fnames: dict[str, int] = {}
    for i, item in enumerate(entries):
        findings += _check_entry(i, item, index_path.parent)
        if _kept(item):
            fname = java_string(item["fname"])
            if fname in seen_fnames:
                j = seen_fnames[fname]
                findings.append(Finding(i, java_string(item["name"]), MISREAD,
                                        f"fname {fname!r} is also entry {j}'s: the app keeps one "
                                        "installed model per fname; installing one replaces "
                                        "the other"))
            else:
                seen_fnames[fname] = i
    return findings


def _kept(item: Any) -> bool:
    """Whether filterValidModels keeps the entry: an object with a non-empty name and fname."""
    return isinstance(item, dict) and all(k in item and java_string(item[k]) != ""
                                          for k in ("name", "fname"))


def _check_entry(i: int, item: Any, folder: Path) -> list[Finding]:
    if not isinstance(item, dict):
        return [Finding(i, None, DROPPED, f"not a JSON object ({_json_type(item)}): the app "
                                          "skips it")]
    name = java_string(item["name"]) if "name" in item else ""
    out: list[Finding] = []

    def add(severity: str, message: str) -> None:
        out.append(Finding(i, name or None, severity, message))

    missing = [k for k in ("name", "fname") if k not in item or java_string(item[k]) == ""]
    if missing:
        add(DROPPED, f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing "
                     "or empty: the app skips the entry (filterValidModels)")
        return out
    for key in ("name", "fname"):
        if not isinstance(item[key], str):
            add(MISREAD, f"{key} is {_json_type(item[key])}, not a string: the app reads it as "
                         f"{java_string(item[key])!r}")
    fw_raw = item.get("framework", "tflite")
    framework = java_string(fw_raw).lower()
    if framework not in ("pytorch", "executorch", "tflite"):
        add(DROPPED, f"framework {java_string(fw_raw)!r} is not one the app knows (tflite, "
                     "pytorch): the model is never loaded")
    else:
        if framework == "executorch":
            add(MISREAD, 'framework "executorch" loads, but the app makes its 64-bit check only '
                         'for "pytorch": a 32-bit phone is offered the model and cannot run it; '
                         'write "pytorch"')
        out += [Finding(i, name, s, m) for s, m in _check_model(item, framework, folder)]
    fmt = java_int(item["input_format_val"]) if "input_format_val" in item else None
    if fmt is not None and fmt != INPUT_FORMAT_VAL:
        add(P_ZERO, f"input_format_val {java_string(item['input_format_val'])}: the app runs only "
                    "format 1 (1d_mag); the model reports p = 0 forever")
    for key, default in (("seizure_probability_threshold_pct", APP_THRESHOLD_PCT),
                         ("accel_std_threshold_pct", APP_GATE_PCT)):
        if key in item:
            msg = _check_pct(key, item[key], default)
            if msg:
                add(MISREAD, msg)
    out += [Finding(i, name, s, m) for s, m in _check_features(item, framework)]
    for key in ("size", "version", "description"):
        if key in item and not isinstance(item[key], str):
            add(MISREAD, f"{key} is {_json_type(item[key])}, not a string: the app shows "
                         f"{java_string(item[key])!r}")
    if "recommended" in item and java_bool(item["recommended"]) is None:
        add(MISREAD, f"recommended is {java_string(item['recommended'])!r}, not true or false: "
                     "the app reads false")
    return out


def _check_model(item: dict[str, Any], framework: str, folder: Path) -> list[tuple[str, str]]:
    """Findings on input_size and on the file beside the index, for a known framework: one per
    cause."""
    has_size = "input_size" in item
    size = java_int(item["input_size"]) if has_size else None
    used = APP_INPUT_SIZE if size is None else size
    raw = java_string(item["input_size"]) if has_size else ""
    if not has_size:
        why = f"no input_size: the app feeds {APP_INPUT_SIZE} samples"
    elif size is None:
        why = f"input_size {raw!r} is not a number: the app feeds {APP_INPUT_SIZE} samples"
    elif isinstance(item["input_size"], float | str) and java_double(item["input_size"]) != size:
        why = f"input_size {raw} is not an integer: the app reads {size}"
    else:
        why = ""
    if used < 1:
        return [(P_ZERO, f"input_size {raw}: the app cannot make a buffer of {used} samples; the "
                         "model never reports")]
    real, out = _check_file(item, framework, folder)
    if real is not None and real != used:
        said = f"{why}, the model takes {real}" if why else \
            f"input_size {used}, but the model takes {real} samples"
        out.append((P_ZERO, f"{said}: every run fails and it reports p = 0 forever; write "
                            f"input_size {real}"))
    elif real is None and not has_size and framework in ("pytorch", "executorch"):
        out.append((P_ZERO, f"{why}; a 750-sample model (osdml's) fails at every run and reports "
                            "p = 0 forever (the file could not be checked); add input_size"))
    elif why and has_size:
        out.append((MISREAD, why))
    return out


def _check_file(item: dict[str, Any], framework: str, folder: Path
                ) -> tuple[int | None, list[tuple[str, str]]]:
    """(the model's real input length or None, findings) for the file named by fname."""
    fname = java_string(item["fname"])
    rel = Path(fname)
    if rel.is_absolute() or ".." in rel.parts:
        return None, [(UNCHECKED, f"fname {fname!r} is not a plain name; the file was not "
                                  "checked")]
    path = folder / rel
    if not path.is_file():
        return None, [(UNCHECKED, f"{fname} is not beside the index: its kind and input length "
                                  "could not be checked")]
    kind, what = _file_kind(path)  # what: "is a TFLite model", "is an HTML page, ..."
    if framework == "tflite":
        if kind != TFLITE:
            said = ('no "framework": the app defaults to "tflite"' if "framework" not in item
                    else f'framework "{java_string(item["framework"])}"')
            fix = '; write "framework": "pytorch"' if kind == sn.PTE else ""
            return None, [(DROPPED, f"{fname} {what}, but {said} and TFLite refuses it: the "
                                    f"model is never loaded{fix}")]
        return _tflite_input(path, fname)
    if kind != sn.PTE:
        what += ", not an ExecuTorch program" if kind != "unknown" else ""
        return None, [(P_ZERO, f"{fname} {what}: Module.load does not read it, every forward "
                               "fails and the model reports p = 0 forever")]
    return _pte_input(path, fname)


def _file_kind(path: Path) -> tuple[str, str]:
    """(kind, "is ...") of a file beside the index."""
    try:
        s = sn.sniff(path)
    except InputError as e:
        return "unknown", str(e).split(f"{path} ", 1)[-1]
    return s.kind, f"is {s.description}"


def _pte_input(path: Path, fname: str) -> tuple[int | None, list[tuple[str, str]]]:
    try:
        import numpy as np

        from osdml.export.pte import PteRunner
    except ImportError as e:
        return None, [(UNCHECKED, f"ExecuTorch is not importable here ({e}); {fname} was not "
                                  "checked")]
    try:
        runner = PteRunner(path)
    except InputError as e:
        return None, [(P_ZERO, f"{fname} does not load in ExecuTorch ({str(e)[:160]}): the model "
                               "reports p = 0 forever")]
    shape, dtype = runner.input_shape, runner.input_dtype
    if len(shape) != 3 or shape[:2] != (1, 1) or dtype != "float32":
        return None, [(P_ZERO, f"{fname} takes {shape} {dtype}; the app feeds (1, 1, N) float32: "
                               "the model reports p = 0 forever")]
    n = int(shape[2])
    try:
        out = np.asarray(runner(np.ones((1, 1, n), np.float32)))
    except Exception as e:
        return n, [(P_ZERO, f"{fname}: forward fails ({type(e).__name__}): the model reports "
                            "p = 0 forever")]
    if out.size < 2:
        return n, [(P_ZERO, f"{fname} outputs {tuple(out.shape)}; the app needs two logits: "
                            "the model reports p = 0 forever")]
    return n, []


def _tflite_input(path: Path, fname: str) -> tuple[int | None, list[tuple[str, str]]]:
    from osdml.export import tflite

    try:
        tflite.litert_interpreter()
    except InputError:
        return None, [(UNCHECKED, f"{fname}: the TFLite input length was not checked "
                                  "(the package ai_edge_litert is not installed)")]
    try:
        interpreter = tflite.load_interpreter(path)
    except InputError as e:
        return None, [(DROPPED, f"{fname} does not load in TFLite ({str(e)[:160]}): the model "
                                "is never loaded")]
    inputs = [tflite.tensor_facts(d) for d in interpreter.get_input_details()]
    outputs = [tflite.tensor_facts(d) for d in interpreter.get_output_details()]
    problem = tflite.app_interface_problem(inputs, outputs)
    if problem:
        return None, [(P_ZERO, f"{fname}: {problem}: every run fails and the model reports "
                               "p = 0 forever")]
    return inputs[0]["shape"][1], []


def _check_pct(key: str, raw: Any, default: float) -> str:
    """Why the app reads a recommended percentage otherwise than written ("" when it does
    not)."""
    v = java_double(raw)
    keep = f"the app ignores it (keeps the phone's setting, default {default:g} %)"
    if v is None or not math.isfinite(v):
        return f"{key} {java_string(raw)!r} is not a number: {keep}"
    if v < 0 or v > 100:
        return f"{key} {v:g} is outside 0..100: the app clamps it to {min(max(v, 0), 100):g} %"
    is_fraction = (0 <= v <= 1) if key.startswith("seizure") else (0 < v < 1)
    if is_fraction:
        meant = f"; if {v * 100:g} % was meant, write {v * 100:g}" if v > 0 else ""
        return f"{key} {v:g} reads as {v:g} %, not a fraction: the app does not convert{meant}"
    return ""


def _check_features(item: dict[str, Any], framework: str) -> list[tuple[str, str]]:
    """min_cpu_features the app ignores, or that no phone has (the model is then skipped)."""
    if "min_cpu_features" not in item:
        return []
    raw = item["min_cpu_features"]
    if not isinstance(raw, list):
        return [(MISREAD, f"min_cpu_features is {_json_type(raw)}, not an array: the app ignores "
                          "it (no requirement)")]
    known = ARM64_FEATURES if framework in ("pytorch", "executorch") \
        else ARM64_FEATURES | ARM32_FEATURES
    unknown = unknown_features([java_string(v) for v in raw], known)
    if not unknown:
        return []
    only32 = [f for f in unknown if f.lower() in ARM32_FEATURES]
    note = (f" ({', '.join(only32)}: listed only for 32-bit processes)" if only32 else "")
    return [(DROPPED, f"min_cpu_features {', '.join(map(repr, unknown))}: no ARM64 /proc/cpuinfo "
                      f"lists {'it' if len(unknown) == 1 else 'them'}{note}; the app marks the "
                      "model [INCOMPATIBLE] and skips it on every phone")]


def unknown_features(features: list[str], known: frozenset[str] = ARM64_FEATURES) -> list[str]:
    """The entries of a min_cpu_features list that no phone's /proc/cpuinfo lists (compared
    in lower case, ``dotprod`` standing for ``asimddp``, as the app does)."""
    return [f for f in features if f and FEATURE_ALIASES.get(f.lower(), f.lower()) not in known]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({java_string(value)})"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
