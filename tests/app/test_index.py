"""osdml publish: the app's index entry, publishing a .pte, and checking an index as the app
reads it (APP_CONTRACT.md, "The models index")."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from osdml.app import index as ix
from osdml.cli import main
from osdml.errors import InputError
from osdml.spec import ModelSpec

TUNED = {"threshold_pct": 62.5, "gate_pct": 4.0, "warn_s": 5.0, "alarm_s": 10.0,
         "voting": "any", "osd": True, "rule": "sensitivity_at_far", "reason": "test",
         "warning": None, "validation": {"sensitivity": 0.8, "detected": 4, "seizure_events": 5,
                                         "false_alarms": 1, "far_24h": 0.5}}
PASSED = {"passed": True, "against": "the eager model", "windows": 8, "failure": None}
LOADS = {"runtime": "executorch 1.0.1", "kind": "xnnpack-fp32", "loads": True, "agrees": True}


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *phrases):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("osdml: error: "), err
    for phrase in phrases:
        assert phrase in err, (phrase, err)


@pytest.fixture(scope="module")
def base(tiny_run, tmp_path_factory):
    """A copy of the tiny run's model.pte whose sidecar says: never tuned (the run may have
    tuned its own), validated, loads in the phone's runtime."""
    return _variant(tiny_run.out_dir / "model.pte", tmp_path_factory.mktemp("base"), "model",
                    spec_update={"app_settings": {}}, validation=PASSED, phone_runtime=LOADS)


def _edit_sidecar(path: Path, spec_update: dict | None = None, **keys) -> dict:
    side = Path(str(path) + ".json")
    data = json.loads(side.read_text())
    data.update(keys)
    for k in [k for k, v in keys.items() if v is None]:
        del data[k]
    if spec_update:
        data["spec"].update(spec_update)
    side.write_text(json.dumps(data))
    return data


def _variant(base: Path, folder: Path, stem: str, spec_update: dict | None = None,
             **keys) -> Path:
    """A copy of `base` as folder/stem.pte, its sidecar changed (a key set to None is removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.pte"
    shutil.copy(base, path)
    shutil.copy(str(base) + ".json", str(path) + ".json")
    _edit_sidecar(path, spec_update, **keys)
    return path


class _Linear(torch.nn.Module):
    """(1, 1, n) or (1, n) -> (1, outputs), for programs osdml did not make."""

    def __init__(self, n: int = 750, outputs: int = 2):
        super().__init__()
        self.fc = torch.nn.Linear(n, outputs)

    def forward(self, x):
        return self.fc(x.reshape(1, -1))


def _raw_pte(path: Path, module: torch.nn.Module, shape: tuple[int, ...],
             spec: bool = True) -> Path:
    """A .pte written with ExecuTorch directly: no spec_json method; with `spec`, a sidecar
    that has only a spec."""
    from executorch.exir import to_edge

    program = to_edge(torch.export.export(module.eval(), (torch.ones(shape),))).to_executorch()
    path.write_bytes(program.buffer)
    if spec:
        Path(str(path) + ".json").write_text(json.dumps({"spec": ModelSpec().model_dump(
            mode="json")}))
    return path


def _tflite(path: Path, n: int) -> Path:
    """A minimal TFLite model with the app's interface: input [1, n, 1] float32 and output
    [1, 2] float32 (no operators: enough for its shapes to be read)."""
    import flatbuffers

    b = flatbuffers.Builder(256)

    def vector(values, prepend):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            prepend(v)
        return b.EndVector()

    def tensor(dims, label):
        shape, name = vector(dims, b.PrependInt32), b.CreateString(label)
        b.StartObject(4)  # Tensor: shape, type (FLOAT32 = 0), buffer, name
        b.PrependUOffsetTRelativeSlot(0, shape, 0)
        b.PrependInt8Slot(1, 0, 0)
        b.PrependUint32Slot(2, 0, 0)
        b.PrependUOffsetTRelativeSlot(3, name, 0)
        return b.EndObject()

    tensors = vector([tensor([1, n, 1], "x"), tensor([1, 2], "p")], b.PrependUOffsetTRelative)
    inputs, outputs = vector([0], b.PrependInt32), vector([1], b.PrependInt32)
    operators = vector([], b.PrependUOffsetTRelative)
    b.StartObject(5)  # SubGraph: tensors, inputs, outputs, operators
    for slot, value in enumerate((tensors, inputs, outputs, operators)):
        b.PrependUOffsetTRelativeSlot(slot, value, 0)
    subgraph = b.EndObject()
    b.StartObject(3)  # an empty Buffer
    buffer = b.EndObject()
    subgraphs, buffers = vector([subgraph], b.PrependUOffsetTRelative), vector(
        [buffer], b.PrependUOffsetTRelative)
    codes = vector([], b.PrependUOffsetTRelative)
    b.StartObject(5)  # Model: version, operator_codes, subgraphs, description, buffers
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


# --------------------------------------------------------------------------- the entry

def test_the_entry_has_every_field_the_app_reads(base):
    entry = ix.index_entry(base)
    spec = ModelSpec.model_validate(json.loads(Path(str(base) + ".json").read_text())["spec"])
    data = base.read_bytes()
    assert entry == {
        "name": "model", "fname": "model.pte", "framework": "pytorch",
        "input_format": "1d_mag", "input_format_val": 1, "input_size": 750,
        "recommended": False, "version": spec.created_utc[:10],
        "description": entry["description"], "size": f"{len(data) / 1024:.0f} kB",
        "min_cpu_features": [], "accel_std_threshold_pct": 5,
        "seizure_probability_threshold_pct": 50, "thresholds_tuned": False,
        "sha256": hashlib.sha256(data).hexdigest()}
    assert entry["version"][:2] == "20" and len(entry["version"]) == 10
    assert "deep_epi_cnn" in entry["description"] and "750 samples at 25 Hz" in entry[
        "description"] and "not tuned" in entry["description"]
    named = ix.index_entry(base, name="OSD CNN 30 s", version="2.1", description="d",
                           recommended=True)
    assert (named["name"], named["version"], named["description"], named["recommended"]) == (
        "OSD CNN 30 s", "2.1", "d", True)


def test_thresholds_are_percent_from_the_tuned_app_settings(base, tmp_path):
    tuned = _variant(base, tmp_path, "tuned", spec_update={"app_settings": TUNED})
    entry = ix.index_entry(tuned)
    assert entry["seizure_probability_threshold_pct"] == 62.5
    assert entry["accel_std_threshold_pct"] == 4  # written as the app stores it: "4"
    assert entry["thresholds_tuned"] is True
    assert "threshold 62.5 %, movement gate 4 %" in entry["description"]
    assert "sensitivity 80%, 0.5 false alarms / 24 h" in entry["description"]
    # a fraction in app_settings is refused, not written as 0.62 %
    frac = _variant(base, tmp_path, "frac", spec_update={
        "app_settings": {**TUNED, "threshold_pct": 0.62}})
    with pytest.raises(InputError, match="looks like a fraction; the app reads percent"):
        ix.index_entry(frac)


def test_the_spec_inside_the_program_is_enough(tiny_run, tmp_path):
    from osdml.export.pte import PteRunner

    alone = tmp_path / "alone.pte"
    shutil.copy(tiny_run.out_dir / "model.pte", alone)  # no sidecar: spec_json is read
    spec = ModelSpec.from_json(PteRunner(alone).constant("spec_json"))
    entry = ix.index_entry(alone)
    assert entry["input_size"] == 750 and entry["min_cpu_features"] == []
    assert entry["thresholds_tuned"] == (bool(spec.app_settings)
                                         and spec.app_settings.get("rule") != "none")
    assert entry["seizure_probability_threshold_pct"] == pytest.approx(
        spec.app_settings.get("threshold_pct", 50), abs=0.005)


def test_app_size_is_what_the_app_shows():
    assert ix.app_size(411_400) == "402 kB"
    assert ix.app_size(500) == "500 bytes"
    assert ix.app_size(2_516_582) == "2.4 MB"


# --------------------------------------------------------------------------- publish

def test_publish_copies_the_file_and_writes_the_index(base, tmp_path, capsys):
    index = tmp_path / "srv" / "index.json"
    code, out, err = _run(capsys, "publish", base, "--index", index, "--name", "CNN v1",
                          "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["copied"] and not result["replaced"] and result["position"] == 0
    assert (tmp_path / "srv" / "model.pte").read_bytes() == base.read_bytes()
    entries = json.loads(index.read_text())
    assert entries == [result["entry"]] and entries[0]["name"] == "CNN v1"
    assert entries[0]["input_size"] == 750
    assert "not tuned" in err  # warned: the app's default thresholds were written
    assert not list(index.parent.glob(".*.tmp"))
    # a second model is appended; the first entry is kept as it was
    other = _variant(base, tmp_path / "b", "other")
    code, out, err = _run(capsys, "publish", other, "--index", index)
    assert code == 0, err
    entries = json.loads(index.read_text())
    assert [e["fname"] for e in entries] == ["model.pte", "other.pte"]
    assert "other.pte -> " in out and "(added as entry 1)" in out
    assert '  input_size: 750' in out and '  seizure_probability_threshold_pct: 50' in out


def test_the_index_is_written_last_and_atomically(base, tmp_path, monkeypatch):
    index = tmp_path / "index.json"
    before = json.dumps([{"name": "old", "fname": "old.tflite"}])
    index.write_text(before)

    def fail(path, obj, **kw):
        with ix.atomic_write(path, "w") as f:
            f.write("[{")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(ix, "write_json", fail)
    with pytest.raises(OSError):
        ix.publish(base, index)
    assert index.read_text() == before  # the old index, whole
    assert not (tmp_path / "model.pte").exists()  # copied first, taken back: nothing names it
    assert not list(tmp_path.glob(".*.tmp"))


def test_publishing_from_the_run_folder(tiny_run, tmp_path):
    """A run folder's own model.pte: the run's validation record is read."""
    result = ix.publish(tiny_run.out_dir / "model.pte", tmp_path / "index.json")
    assert result.entry["input_size"] == 750 and result.entry["framework"] == "pytorch"
    assert not any("no validation record" in w for w in result.warnings)


def test_replace(base, tmp_path, capsys):
    index = tmp_path / "index.json"
    ix.publish(base, index, version="1")
    code, _, err = _run(capsys, "publish", base, "--index", index, "--version", "2")
    _one_line_error(code, err, "entry 0 has name 'model' and fname 'model.pte'", "--replace")
    code, out, err = _run(capsys, "publish", base, "--index", index, "--version", "2",
                          "--replace", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["replaced"] and result["position"] == 0
    assert [e["version"] for e in json.loads(index.read_text())] == ["2"]
    # the same name under another file: --replace replaces that entry
    renamed = _variant(base, tmp_path / "v3", "model_v3")
    result = ix.publish(renamed, index, name="model", replace=True)
    assert result.replaced and [e["fname"] for e in json.loads(index.read_text())] == [
        "model_v3.pte"]
    # name used by one entry and fname by another: refused even with --replace
    ix.publish(base, index, name="other")
    code, _, err = _run(capsys, "publish", renamed, "--index", index, "--name", "other",
                        "--replace")
    _one_line_error(code, err, "entry 0 has fname 'model_v3.pte'",
                    "entry 1 has name 'other'", "these are two")


def test_a_second_model_under_another_fname(base, tmp_path, capsys):
    index = tmp_path / "srv" / "index.json"
    ix.publish(base, index, name="first")
    code, _, err = _run(capsys, "publish", base, "--index", index, "--name", "second")
    _one_line_error(code, err, "entry 0 has fname 'model.pte'", "another --fname")
    assert "another --name" not in err  # the name is free: only the file name clashes
    code, _, err = _run(capsys, "publish", base, "--index", index, "--name", "second",
                        "--fname", "model_b.pte")
    assert code == 0, err
    entries = json.loads(index.read_text())
    assert [(e["name"], e["fname"]) for e in entries] == [("first", "model.pte"),
                                                           ("second", "model_b.pte")]
    assert (index.parent / "model_b.pte").read_bytes() == base.read_bytes()
    code, _, err = _run(capsys, "publish", base, "--index", index, "--fname", "../x.pte")
    _one_line_error(code, err, "must be a plain file name")


def test_no_validation_record_is_published_with_a_warning(base, tmp_path, capsys):
    bare = _variant(base, tmp_path / "m", "bare", validation=None, phone_runtime=None)
    code, out, err = _run(capsys, "publish", bare, "--index", tmp_path / "index.json")
    assert code == 0, err
    assert "osdml: warning: bare.pte: no validation record" in err
    assert "not checked in the phone's runtime" in err
    result = ix.publish(bare, tmp_path / "i2" / "index.json")
    assert any("no validation record" in w for w in result.warnings)


@pytest.mark.parametrize("case", [
    "ptl", "pt", "tflite", "html", "json", "no-spec", "validation-failed",
    "run-validation-failed", "phone-loads-false", "phone-disagrees", "input-2d",
    "three-outputs", "stale-sidecar", "missing", "folder"])
def test_refusals_are_one_line(case, base, tiny_run, tmp_path, capsys):
    run = tiny_run.out_dir
    d = tmp_path / "in"
    d.mkdir()
    if case == "ptl":
        path, phrases = run / "model.ptl", ["lite-interpreter", "not an ExecuTorch program"]
    elif case == "pt":
        path, phrases = run / "model.pt", ["torch.save checkpoint", "osdml convert"]
    elif case == "tflite":
        path, phrases = _tflite(d / "m.tflite", 125), ["is a TensorFlow Lite model",
                                                       '"framework": "tflite"']
    elif case == "html":
        path = d / "model.pte"
        path.write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
        phrases = ["HTML page"]
    elif case == "json":
        path = d / "model.pte"
        path.write_text('{"name": "not a model"}')
        phrases = ["is JSON, not a model file"]
    elif case == "no-spec":
        path = _raw_pte(d / "raw.pte", _Linear(), (1, 1, 750), spec=False)
        phrases = ["has no osdml spec"]
    elif case == "validation-failed":
        path = _variant(base, d, "bad", validation={"passed": False, "failure": "max logit "
                                                    "difference 0.3 > 0.0001"})
        phrases = ["validation failed", "max logit difference 0.3"]
    elif case == "run-validation-failed":
        path = _variant(base, d, "model", validation=None)
        (d / "validation.json").write_text(json.dumps({"results": [
            {"format": "pte", "path": "/elsewhere/run/model.pte", "passed": False,
             "failure": "decisions agree 90%"}]}))
        phrases = ["validation failed", "validation.json", "decisions agree 90%"]
    elif case == "phone-loads-false":
        path = _variant(base, d, "old", phone_runtime={**LOADS, "loads": False,
                                                       "error": "OperatorMissing 0x14"})
        phrases = ["does not load in the phone's runtime", "executorch 1.0.1",
                   "OperatorMissing"]
    elif case == "phone-disagrees":
        path = _variant(base, d, "old", phone_runtime={**LOADS, "agrees": False})
        phrases = ["gives other logits"]
    elif case == "input-2d":
        path = _raw_pte(d / "flat.pte", _Linear(), (1, 750))
        phrases = ["its input is (1, 750) float32", "(1, 1, N) float32"]
    elif case == "three-outputs":
        path = _raw_pte(d / "three.pte", _Linear(outputs=3), (1, 1, 750))
        phrases = ["outputs (1, 3)", "two logits"]
    elif case == "stale-sidecar":
        path = _variant(base, d, "stale", sha256="0" * 64)
        phrases = ["describes another file"]
    elif case == "missing":
        path, phrases = d / "nothing.pte", ["does not exist"]
    else:
        path, phrases = d, ["is a folder"]
    index = tmp_path / "srv" / "index.json"
    code, out, err = _run(capsys, "publish", path, "--index", index)
    _one_line_error(code, err, "cannot publish", *phrases)
    if case not in ("missing", "folder"):
        assert str(path) in err
    assert not index.exists() and not (tmp_path / "srv").exists()


@pytest.mark.parametrize("text,phrase", [
    ('{"name": "m", "fname": "m.pte"}', "holds an object, not an array"),
    ('[{"name": "m",]', "is not valid JSON"),
    ("", "is not valid JSON"),
    ('[{"input_size": NaN}]', "is not valid JSON"),
])
def test_an_index_that_is_not_a_json_array_is_never_overwritten(text, phrase, base, tmp_path,
                                                                capsys):
    index = tmp_path / "index.json"
    index.write_text(text)
    code, _, err = _run(capsys, "publish", base, "--index", index)
    _one_line_error(code, err, str(index), phrase)
    assert index.read_text() == text and not (tmp_path / "model.pte").exists()


def test_a_different_file_of_that_name_beside_the_index(base, tmp_path, capsys):
    (tmp_path / "model.pte").write_bytes(b"something else")
    code, _, err = _run(capsys, "publish", base, "--index", tmp_path / "index.json")
    _one_line_error(code, err, "exists and is a different file", "--replace")
    code, _, err = _run(capsys, "publish", base, "--index", tmp_path / "index.json",
                        "--replace")
    assert code == 0, err
    assert (tmp_path / "model.pte").read_bytes() == base.read_bytes()


def test_usage_errors(base, tmp_path, capsys):
    code, _, err = _run(capsys, "publish", base)
    _one_line_error(code, err, "--index is missing")
    code, _, err = _run(capsys, "publish", base, "--check", tmp_path / "index.json")
    _one_line_error(code, err, "--check reads an index", "MODEL")
    code, _, err = _run(capsys, "publish")
    _one_line_error(code, err, "--check INDEX.json")


# --------------------------------------------------------------------------- check

@pytest.fixture(scope="module")
def server(base, tmp_path_factory):
    """A server folder: a 750-sample .pte, TFLite models of 125 and 750 samples, an HTML page
    saved under a model's name."""
    folder = tmp_path_factory.mktemp("server")
    shutil.copy(base, folder / "m750.pte")
    shutil.copy(base, folder / "m750b.pte")
    _tflite(folder / "m125.tflite", 125)
    _tflite(folder / "m750.tflite", 750)
    (folder / "page.pte").write_text("<html><body>404 Not Found</body></html>")
    return folder


GOOD = {"name": "CNN", "fname": "m750.pte", "framework": "pytorch", "input_size": 750,
        "input_format_val": 1, "accel_std_threshold_pct": 5,
        "seizure_probability_threshold_pct": 50, "min_cpu_features": ["ASIMD", "dotprod"],
        "size": "402 kB", "version": "1", "description": "d", "recommended": True}
TFL = {"name": "CNN_V0.24", "fname": "m125.tflite", "framework": "tflite"}

CASES = {  # entries -> (entry, severity, phrases) of the one finding expected
    "not-an-object": (["a string"], 0, "dropped", ["not a JSON object", "skips it"]),
    "empty-name": ([{**GOOD, "name": ""}], 0, "dropped", ["name is missing or empty"]),
    "no-fname": ([{"name": "x"}], 0, "dropped", ["fname is missing or empty"]),
    "name-number": ([{**GOOD, "name": 5}], 0, "misread", ["reads it as '5'"]),
    "name-null": ([{**GOOD, "name": None}], 0, "misread", ["reads it as 'null'"]),
    "unknown-framework": ([{**GOOD, "framework": "onnx"}], 0, "dropped",
                          ["'onnx' is not one the app knows", "never loaded"]),
    "executorch": ([{**GOOD, "framework": "executorch"}], 0, "misread",
                   ["64-bit check only", '"pytorch"']),
    "format-2": ([{**GOOD, "input_format_val": 2}], 0, "p=0", ["only format 1", "p = 0"]),
    "old-sidecar": ([{"name": "model", "fname": "m750.pte", "framework": "pytorch",
                      "size": "402 kB", "min_cpu_features": [], "sha256": "ab"}], 0, "p=0",
                    ["no input_size", "feeds 125 samples, the model takes 750", "p = 0"]),
    "size-mismatch": ([{**GOOD, "input_size": 125}], 0, "p=0",
                      ["input_size 125, but the model takes 750", "write input_size 750"]),
    "size-not-number": ([{**GOOD, "input_size": "750 samples"}], 0, "p=0",
                        ["'750 samples' is not a number", "feeds 125 samples, the model takes "
                         "750", "write input_size 750"]),
    "size-not-integer": ([{**GOOD, "input_size": 750.5}], 0, "misread",
                         ["750.5 is not an integer: the app reads 750"]),
    "pte-as-tflite": ([{**GOOD, "framework": "tflite"}], 0, "dropped",
                      ["TFLite refuses it", '"pytorch"']),
    "pte-no-framework": ([{k: v for k, v in GOOD.items() if k != "framework"}], 0, "dropped",
                         ['no "framework": the app defaults to "tflite"']),
    "tflite-as-pytorch": ([{**GOOD, "fname": "m750.tflite"}], 0, "p=0",
                          ["is a TensorFlow Lite model", "p = 0"]),
    "html-as-pte": ([{**GOOD, "fname": "page.pte"}], 0, "p=0",
                    ["page.pte is an HTML page", "p = 0"]),
    "tflite-size": ([{**TFL, "fname": "m750.tflite"}], 0, "p=0",
                    ["no input_size: the app feeds 125 samples, the model takes 750"]),
    "tflite-size-given": ([{**TFL, "input_size": 750}], 0, "p=0",
                          ["input_size 750, but the model takes 125 samples"]),
    "old-sidecar-elsewhere": ([{"name": "model", "fname": "elsewhere.pte",
                                "framework": "pytorch"}], 0, "p=0",
                              ["no input_size", "could not be checked"]),
    "missing-file": ([{**GOOD, "fname": "gone.pte"}], 0, "unchecked",
                     ["gone.pte is not beside the index", "could not be checked"]),
    "fraction": ([{**GOOD, "seizure_probability_threshold_pct": 0.5}], 0, "misread",
                 ["0.5 reads as 0.5 %", "write 50"]),
    "gate-fraction": ([{**GOOD, "accel_std_threshold_pct": 0.05}], 0, "misread",
                      ["0.05 reads as 0.05 %", "write 5"]),
    "clamped": ([{**GOOD, "seizure_probability_threshold_pct": 150}], 0, "misread",
                ["outside 0..100", "clamps it to 100 %"]),
    "not-a-number": ([{**GOOD, "accel_std_threshold_pct": "five"}], 0, "misread",
                     ["'five' is not a number", "ignores it"]),
    "null-threshold": ([{**GOOD, "seizure_probability_threshold_pct": None}], 0, "misread",
                       ["'null' is not a number"]),
    "features-not-array": ([{**GOOD, "min_cpu_features": "asimd"}], 0, "misread",
                           ["not an array", "ignores it"]),
    "feature-misspelt": ([{**GOOD, "min_cpu_features": ["asimd", "asmddp"]}], 0, "dropped",
                         ["'asmddp'", "no ARM64 /proc/cpuinfo lists it", "every phone"]),
    "feature-32-bit": ([{**GOOD, "min_cpu_features": ["neon"]}], 0, "dropped",
                       ["listed only for 32-bit processes"]),
    "size-number": ([{**GOOD, "size": 402}], 0, "misread", ["size is a number (402)",
                                                             "shows '402'"]),
    "version-number": ([{**GOOD, "version": 3.0}], 0, "misread", ["shows '3.0'"]),
    "description-null": ([{**GOOD, "description": None}], 0, "misread", ["shows 'null'"]),
    "recommended-yes": ([{**GOOD, "recommended": "yes"}], 0, "misread", ["reads false"]),
    "same-fname": ([GOOD, {**GOOD, "name": "CNN 2"}], 1, "misread",
                   ["also entry 0's", "replaces the other"]),
}


LITERT = importlib.util.find_spec("ai_edge_litert") is not None


@pytest.mark.parametrize("case", CASES)
def test_check_finds(case, server, capsys):
    entries, at, severity, phrases = CASES[case]
    if case.startswith("tflite-size") and not LITERT:
        pytest.skip("reading a .tflite's input needs ai_edge_litert")
    index = server / f"index_{case}.json"
    index.write_text(json.dumps(entries))
    findings = ix.check_index(index)
    if severity != "unchecked":  # a file not beside the index is listed too, as unchecked
        findings = [f for f in findings if f.severity != "unchecked"]
    assert len(findings) == 1, [f.message for f in findings]
    f = findings[0]
    assert (f.entry, f.severity) == (at, severity), f
    for phrase in phrases:
        assert phrase in f.message, (phrase, f.message)
    code, out, err = _run(capsys, "publish", "--check", index, "--json")
    assert f.to_dict() in json.loads(out)["findings"]
    if severity == "unchecked":
        assert code == 0, err
    else:
        assert code == 1 and err.count("\n") == 1 and "1 finding" in err, err


@pytest.mark.skipif(not LITERT, reason="reading a .tflite's input needs ai_edge_litert")
def test_a_clean_index_passes(server, capsys):
    index = server / "index_clean.json"
    index.write_text(json.dumps([
        GOOD, TFL, {**TFL, "name": "v2", "fname": "m750.tflite", "input_size": "750"},
        {**GOOD, "name": "CNN b", "fname": "m750b.pte", "framework": "PyTorch",
         "recommended": "false", "seizure_probability_threshold_pct": "62.5"}]))
    assert ix.check_index(index) == []
    code, out, err = _run(capsys, "publish", "--check", index)
    assert code == 0, err
    assert "4 entries, no findings" in out


def test_the_table_and_exit_1(server, capsys):
    index = server / "index_table.json"
    index.write_text(json.dumps([GOOD, 7, {**TFL, "input_format_val": 3},
                                 {**GOOD, "name": "x", "fname": "gone.pte"}]))
    code, out, err = _run(capsys, "publish", "--check", index)
    assert code == 1
    assert err.startswith("osdml: error: ") and err.count("\n") == 1
    assert "2 findings (1 dropped, 1 p=0)" in err  # the unchecked file is listed, not failed
    assert "severity" in out and "not a JSON object" in out and "gone.pte is not beside" in out


def test_tflite_length_unchecked_without_litert(server, monkeypatch):
    pytest.importorskip("ai_edge_litert")
    index = server / "index_tfl.json"
    index.write_text(json.dumps([{**TFL, "fname": "m750.tflite", "input_size": 750}]))
    assert ix.check_index(index) == []
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    [f] = ix.check_index(index)
    assert f.severity == "unchecked" and "ai_edge_litert is not installed" in f.message


def test_what_publish_writes_passes_the_check(base, tmp_path):
    tuned = _variant(base, tmp_path / "m", "tuned", spec_update={"app_settings": TUNED})
    index = tmp_path / "srv" / "index.json"
    ix.publish(base, index)
    ix.publish(tuned, index, recommended=True)
    assert ix.check_index(index) == []


def test_check_reads_nan_as_the_app_does(server):
    index = server / "index_nan.json"
    index.write_text('[{"name": "CNN_V0.24", "fname": "m125.tflite", '
                     '"seizure_probability_threshold_pct": NaN}]')
    [f] = [f for f in ix.check_index(index) if f.severity != "unchecked"]
    assert f.severity == "misread" and "'NaN' is not a number: the app ignores it" in f.message


def test_check_refuses_what_is_not_an_index(tmp_path, capsys):
    code, _, err = _run(capsys, "publish", "--check", tmp_path / "index.json")
    _one_line_error(code, err, "does not exist")
    (tmp_path / "index.json").write_text('{"models": []}')
    code, _, err = _run(capsys, "publish", "--check", tmp_path / "index.json")
    _one_line_error(code, err, "not an array")


def test_org_json_coercions():
    assert [ix.java_string(v) for v in (5, 5.0, None, True, "x", [1, "a"])] == [
        "5", "5.0", "null", "true", "x", '[1,"a"]']
    assert [ix.java_int(v) for v in (750, 750.9, "750", " 125 ", "x", True, None)] == [
        750, 750, 750, 125, None, None, None]
    assert [ix.java_double(v) for v in (50, "62.5", "1e2", "5d", "abc", "1_0", "nan", False)
            ] == [50.0, 62.5, 100.0, 5.0, None, None, None, None]
    assert ix.java_int("NaN") == 0 and ix.java_int(float("nan")) == 0  # (int) NaN in Java
    assert [ix.java_bool(v) for v in (True, "TRUE", "false", "yes", 1)] == [
        True, True, False, None, None]
