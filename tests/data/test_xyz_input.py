"""Three-axis input ([data.windows] input = "xyz"): windows of rawData3D x, y, z in g."""

from __future__ import annotations

import json

import numpy as np
import pytest

from factory import T0, event, iso, write_events
from osdml.config import AugmentConfig, load_config
from osdml.data.augment import augment_training
from osdml.data.cache import load_streams
from osdml.data.filters import select_events
from osdml.data.windows import WindowSet, make_windows
from osdml.errors import InputError

N_DP = 8  # 8 datapoints: 3 windows of 750 samples at a 125-sample hop


def _xyz_event(event_id, n_dp: int = N_DP, *, type: str = "Seizure", t0: float = T0) -> dict:
    """An event whose rawData3D differ on every axis and sample (x rises, y falls, z ~ 1 g)."""
    dps = []
    for d in range(n_dp):
        i = np.arange(125) + 125 * d
        xyz = np.stack([100 + i, -200 - i, 980 + i % 7], axis=1)  # (125, 3) milli-g
        dps.append({"dataTime": iso(t0 + 5 * (d + 1)),
                    "rawData": np.sqrt((xyz.astype(float) ** 2).sum(axis=1)).round(1).tolist(),
                    "rawData3D": xyz.ravel().tolist(), "hr": 70, "alarmState": 0})
    return {"id": event_id, "userId": 1, "type": type, "subType": None, "desc": "",
            "dataTime": iso(t0 + 5 * n_dp / 2), "dataSourceName": "Garmin", "datapoints": dps}


@pytest.fixture
def mixed(tmp_path):
    """Two 3-D events, one without rawData3D at all, one that lost it in one datapoint."""
    partial = _xyz_event(4, t0=T0 + 3000)
    partial["datapoints"][3]["rawData3D"] = []
    events = [_xyz_event(1), _xyz_event(2, type="False Alarm", t0=T0 + 1000),
              event(3, N_DP, t0=T0 + 2000), partial]
    return write_events(tmp_path / "mixed.json", events), events


def _expected_xyz(ev: dict) -> np.ndarray:
    """(3, n_samples) float32: rawData3D / 1000 in double, x, y, z."""
    raw = np.concatenate([np.asarray(dp["rawData3D"], np.float64).reshape(-1, 3)
                          for dp in ev["datapoints"]])
    return (raw / 1000.0).astype(np.float32).T


@pytest.mark.parametrize("cache", [False, True])
def test_xyz_windows_are_rawdata3d_over_1000_in_order_xyz(mixed, cache):
    path, events = mixed
    streams = load_streams([path], cache=cache)
    sel = select_events(streams, need_3d=True)
    assert [streams.events[i].id for i in sel.indices] == ["1", "2"]
    assert sel.excluded == {"no 3-D data": 2}  # no rawData3D, and one datapoint without
    w = make_windows(streams, sel.indices, sel.labels, input="xyz")
    assert len(w) == 2 * (N_DP - 5) and w.channels == 3
    x = w.batch(np.arange(len(w)))
    assert x.shape == (len(w), 3, 750) and x.dtype == np.float32
    for k in range(len(w)):
        ev = events[int(w.event[k])]
        s = int(w.starts[k] - streams.segment_rows(int(w.event[k]))[0, 0])
        np.testing.assert_array_equal(x[k], _expected_xyz(ev)[:, s:s + 750])
        np.testing.assert_array_equal(w[k], x[k])
    np.testing.assert_array_equal(x[0, :, 0], np.float32([0.1, -0.2, 0.98]))


def test_magnitude_windows_unchanged(mixed):
    path, events = mixed
    streams = load_streams([path], cache=False)
    sel = select_events(streams)  # every event, as before
    assert len(sel) == 4 and not sel.excluded
    w = make_windows(streams, sel.indices, sel.labels)
    x = w.batch(np.arange(len(w)))
    assert x.shape == (4 * (N_DP - 5), 1, 750) and w.input == "magnitude"
    raw = np.concatenate([dp["rawData"] for dp in events[0]["datapoints"]])
    np.testing.assert_array_equal(x[0, 0], (raw[:750] / 1000.0).astype(np.float32))
    assert WindowSet([w]).batch([0]).shape == (1, 1, 750)


def test_xyz_windows_refuse_events_without_3d(mixed):
    path, _ = mixed
    streams = load_streams([path], cache=False)
    with pytest.raises(ValueError, match="event 3 has no 3-D data"):
        make_windows(streams, [2], [0], input="xyz")
    with pytest.raises(ValueError, match="no 3-D"):
        streams.xyz_at(np.array([streams.segment_rows(2)[0, 0]]), 750)


def test_no_3d_events_is_one_input_error(tmp_path):
    from osdml.pipeline import select_for

    path = write_events(tmp_path / "mag.json", [event(1, N_DP), event(2, N_DP, type="NDA")])
    cfg = load_config(None, {"data": {"windows": {"input": "xyz"}}})
    with pytest.raises(InputError) as e:
        select_for(load_streams([path], cache=False), cfg)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith('data.windows.input = "xyz" needs rawData3D in every '
                                   "datapoint of an event, and none of the 2 events read has it")


def test_augmented_copies_carry_xyz(mixed):
    path, events = mixed
    streams = load_streams([path], cache=False)
    sel = select_events(streams, need_3d=True)
    cfg = AugmentConfig(noise_copies=1, noise_sigma_mg=10.0, phase_step_samples=25,
                        oversample=False, undersample=False)
    aug = augment_training(streams, sel, sel.indices, cfg)
    copies = aug.copies
    w = make_windows(copies, np.arange(copies.n_events), np.ones(copies.n_events), input="xyz")
    assert len(w) and w.batch(np.arange(len(w))).shape == (len(w), 3, 750)
    by_id = {e.id: i for i, e in enumerate(copies.events)}
    src = _expected_xyz(events[0])
    shifted = copies.xyz_at(copies.segment_rows(by_id["1~p25"])[:1, 0], 750)[0]
    np.testing.assert_array_equal(shifted, src[:, 25:775])  # phase shift: same x, y, z, later
    noisy = copies.xyz_at(copies.segment_rows(by_id["1~n0"])[:1, 0], 750)[0]
    diff = (noisy - src[:, :750]) * 1000
    assert 5 < diff.std() < 15 and np.abs(diff.mean(axis=1)).max() < 2  # noise on every axis


def test_config_and_spec_record_the_input():
    from osdml.spec import ModelSpec

    assert load_config(None).data.windows.input == "magnitude"
    with pytest.raises(InputError, match="input"):
        load_config(None, {"data": {"windows": {"input": "xy"}}})
    old = json.loads(ModelSpec().to_json())
    old.pop("input")
    assert ModelSpec.from_dict(old).input == "magnitude"  # specs before the field
    with pytest.raises(InputError, match="3 channels"):
        ModelSpec.from_dict({"input": "xyz"})
    assert ModelSpec(input="xyz", input_shape=(1, 3, 750)).input == "xyz"


# --------------------------------------------------------------------------- a research run

@pytest.mark.filterwarnings("ignore:no epoch met")
def test_xyz_run_trains_a_three_channel_model_that_publish_and_replay_refuse(tmp_path, capsys):
    import hashlib

    import torch

    from conftest import TINY_TRAIN
    from osdml.cli import main
    from osdml.data.synthetic import SynthSpec, write_synthetic
    from osdml.export.checkpoint import load_pt
    from osdml.pipeline import train_run

    synth_dir = tmp_path / "synth"  # smaller than the shared release: 15 events
    write_synthetic(synth_dir, SynthSpec(users=3, seizures_per_user=2, false_alarms_per_user=2,
                                         nda_per_user=1, seed=7))
    cfg = load_config(None, {**TINY_TRAIN, "data": {**TINY_TRAIN["data"],
                                                    "windows": {"input": "xyz"}},
                             "train": {**TINY_TRAIN["train"], "max_epochs": 1},
                             # .pt only: the .pte export would add ~30 s
                             "export": {"formats": ["pt"], "validate_windows": 32}})
    run = train_run([synth_dir], cfg, tmp_path / "run", progress=False, cache=False)
    assert run.passed, run.failures()
    model, spec, _ = load_pt(run.artefacts["pt"])
    assert spec.input == "xyz" and spec.input_shape == (1, 3, 750)
    assert spec.arch_kwargs["in_channels"] == 3 and "x, y, z" in spec.input_units
    assert model(torch.ones(2, 3, 750)).shape == (2, 2)
    # publish reads the spec in the sidecar before running the program: a program header with
    # the run's spec beside it is refused as the exported .pte is (the program's (1, 3, N)
    # input is refused the same way when there is no sidecar)
    pte = tmp_path / "model.pte"
    pte.write_bytes(b"\0\0\0\0ET12" + bytes(56))
    pte.with_name("model.pte.json").write_text(json.dumps({
        "sha256": hashlib.sha256(pte.read_bytes()).hexdigest(),
        "spec": json.loads(spec.to_json())}))
    code = main(["publish", str(pte), "--index", str(tmp_path / "index.json")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "index.json").exists()
    assert err.strip().splitlines()[-1] == (
        f'osdml: error: cannot publish {pte}: it takes three-axis input (x, y, z; spec input '
        '"xyz") and the app feeds acceleration magnitude only; xyz models are for research '
        '([data.windows] input = "magnitude" trains one the app runs)')
    code = main(["replay", "--data", str(synth_dir), "--model", str(run.artefacts["pt"]),
                 "--out", str(tmp_path / "replay")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        f'osdml: error: cannot replay {run.artefacts["pt"]}: it takes three-axis input')
