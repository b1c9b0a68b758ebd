"""Bad-input sweep: random, truncated and mutated bytes and malformed JSON structures fed to
every command that reads files. Every case must end in success (exit 0) or one line on stderr
with exit status 2: never a traceback, never "internal error" (exit 3)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory import event
from osdml.cli import main

SWEEP = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


def outcome(capsys, args):
    """Run the CLI; return (exit status, stderr lines) after checking the house rules."""
    capsys.readouterr()
    code = main(args)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(err) == 1, err
        assert "Traceback" not in err[0] and "internal error" not in err[0]
    return code, err


def valid_osdb() -> bytes:
    events = [event(1, 8), dict(event(2, 7, value=900), type="False Alarm")]
    return json.dumps(events).encode()


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, byte) edits: 0 replace, 1 insert, 2 delete."""
    b = bytearray(data)
    for kind, pos, value in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] = value
        elif kind == 1:
            b.insert(i, value)
        else:
            del b[i]
    return bytes(b)


EDITS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**9), st.integers(0, 255)),
                 min_size=1, max_size=8)
JSON_LEAF = st.none() | st.booleans() | st.integers(-10**12, 10**12) | \
    st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
FIELD = JSON_LEAF | st.lists(JSON_LEAF, max_size=130)
DATAPOINT = st.fixed_dictionaries({}, optional={
    "rawData": FIELD, "rawData3D": FIELD, "hr": FIELD, "alarmState": FIELD, "dataTime": FIELD,
    "o2Sat": FIELD})
EVENT = st.fixed_dictionaries({}, optional={
    "id": FIELD, "userId": FIELD, "type": FIELD, "subType": FIELD, "dataTime": FIELD,
    "seizureTimes": FIELD, "datapoints": st.lists(DATAPOINT, max_size=8) | JSON_LEAF})


# --------------------------------------------------------------------------- the OSDB reader

@SWEEP
@given(data=st.binary(max_size=3000))
def test_random_bytes_as_osdb(tmp_path, capsys, data):
    path = tmp_path / "f.json"
    path.write_bytes(data)
    outcome(capsys, ["data", "summary", str(path), "--no-cache"])


@SWEEP
@given(cut=st.integers(0, 10**9))
def test_truncated_osdb(tmp_path, capsys, cut):
    data = valid_osdb()
    path = tmp_path / "f.json"
    path.write_bytes(data[:cut % len(data)])
    outcome(capsys, ["data", "summary", str(path), "--no-cache"])


@SWEEP
@given(edits=EDITS)
def test_mutated_osdb(tmp_path, capsys, edits):
    path = tmp_path / "f.json"
    path.write_bytes(mutate(valid_osdb(), edits))
    outcome(capsys, ["data", "summary", str(path), "--no-cache"])


@SWEEP
@given(doc=JSON)
def test_any_json_document(tmp_path, capsys, doc):
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    outcome(capsys, ["data", "summary", str(path), "--no-cache"])


@SWEEP
@given(events=st.lists(EVENT, max_size=4), ndjson=st.booleans())
def test_event_shaped_json_with_wrong_field_types(tmp_path, capsys, events, ndjson):
    path = tmp_path / "f.json"
    path.write_text("\n".join(json.dumps(e) for e in events) if ndjson else json.dumps(events))
    outcome(capsys, ["data", "summary", str(path), "--no-cache"])


# --------------------------------------------------------------------------- model files

@pytest.fixture(scope="module")
def model_bytes(tiny_run):
    return {fmt: p.read_bytes() for fmt, p in tiny_run.artefacts.items()}


@SWEEP
@given(fmt=st.sampled_from(["pt", "ptl", "pte"]), cut=st.integers(0, 10**9))
def test_truncated_model_files(tmp_path, capsys, model_bytes, fmt, cut):
    data = model_bytes[fmt]
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(data[:cut % len(data)])
    outcome(capsys, ["inspect", str(path)])


@SWEEP
@given(fmt=st.sampled_from(["pt", "ptl", "pte"]), edits=EDITS)
def test_mutated_model_files(tmp_path, capsys, model_bytes, fmt, edits):
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(mutate(model_bytes[fmt], edits))
    outcome(capsys, ["inspect", str(path)])


@SWEEP
@given(data=st.binary(max_size=3000), ext=st.sampled_from(["pt", "ptl", "pte", "bpte"]))
def test_random_bytes_as_model_files(tmp_path, capsys, data, ext):
    path = tmp_path / f"m.{ext}"
    path.write_bytes(data)
    outcome(capsys, ["inspect", str(path)])


# --------------------------------------------------------------------------- every command

BAD_DATA = {
    "empty": b"",
    "html": b"<!DOCTYPE html><html><body>Sign in</body></html>",
    "truncated": valid_osdb()[:500],
    "random": bytes(range(256)) * 4,
    "not events": b'{"hello": [1, 2, 3]}',
}


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_every_data_command_answers_bad_data_in_one_line(tmp_path, capsys, tiny_run, kind):
    bad = tmp_path / "bad.json"
    bad.write_bytes(BAD_DATA[kind])
    cfg = tmp_path / "cv.toml"
    cfg.write_text(f'[data]\nfiles = ["{bad}"]\n[data.split]\nmethod = "kfold"\nn_folds = 2\n')
    pte = str(tiny_run.artefacts["pte"])
    for args in (["data", "summary", str(bad)],
                 ["data", "split", str(bad), "-o", str(tmp_path / "s.json")],
                 ["train", "-d", str(bad), "-o", str(tmp_path / "t")],
                 ["run", "-c", str(cfg), "-o", str(tmp_path / "r")],
                 ["replay", "-m", pte, "-d", str(bad), "-o", str(tmp_path / "p")],
                 ["validate", pte, "--data", str(bad)],
                 ["convert", str(tiny_run.artefacts["pt"]), "-o", str(tmp_path / "c.pte"),
                  "--quantize", "int8", "--calibration", str(bad)]):
        code, err = outcome(capsys, [*args, "--no-cache"] if args[0] in (
            "data", "train", "run", "replay") else args)
        assert code == 2, (args, err)
        assert str(bad) in err[0] or "bad.json" in err[0] or "no usable" in err[0], (args, err)


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_every_model_command_answers_a_bad_model_file_in_one_line(tmp_path, capsys, synth_dir,
                                                                  kind):
    bad = tmp_path / "bad.pte"
    bad.write_bytes(BAD_DATA[kind])
    for args in (["inspect", str(bad)], ["validate", str(bad), "--data", str(synth_dir)],
                 ["convert", str(bad), "-o", str(tmp_path / "c.pte")],
                 ["bench", str(bad), "--runs", "2"],
                 ["replay", "-m", str(bad), "-d", str(synth_dir), "-o", str(tmp_path / "p")]):
        code, err = outcome(capsys, args)
        assert code != 0 and str(bad) in err[0], (args, err)
