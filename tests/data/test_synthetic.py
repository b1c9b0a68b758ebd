"""The synthetic OSDB generator: format, round trip, determinism, defects, plausible signals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SMALL
from osdml.app.engine import movement_pct
from osdml.data import motion
from osdml.data.cache import load_streams
from osdml.data.osdb import parse_time
from osdml.data.synthetic import INFO_NAME, SynthSpec, write_synthetic


def test_files_have_the_osdb_fields_types_and_units(synth_dir):
    files = sorted(p.name for p in synth_dir.iterdir())
    assert files == [INFO_NAME, "osdb_synth_allSeizures.json", "osdb_synth_falseAlarms.json",
                     "osdb_synth_ndaEvents.json"]
    events = json.loads((synth_dir / "osdb_synth_allSeizures.json").read_text())
    assert len(events) == SMALL.users * SMALL.seizures_per_user
    e = events[0]
    assert isinstance(e["id"], int) and isinstance(e["userId"], int)
    assert e["type"] == "Seizure" and e["subType"] in ("Tonic-Clonic", "Other", "Tonic", "Aura")
    assert e["dataTime"].endswith("Z") and parse_time(e["dataTime"]) > 1.6e9
    start, end = e["seizureTimes"]
    assert start < end
    dp = e["datapoints"][0]
    assert len(dp["rawData"]) == 125 and len(dp["rawData3D"]) == 375
    assert all(isinstance(v, int) for v in dp["rawData3D"])
    raw_type = float if e["dataSourceName"] == "Garmin" else int
    assert all(isinstance(v, raw_type) for v in dp["rawData"])
    assert 500 < np.mean(dp["rawData"]) < 2000  # milli-g, gravity included
    assert dp["alarmState"] in (0, 1, 2) and isinstance(dp["hr"], int)
    t = [parse_time(d["dataTime"]) for d in e["datapoints"]]
    assert all(4 <= b - a <= 6 for a, b in zip(t, t[1:], strict=False))


def test_round_trip_reads_back_with_zero_skips(synth_dir):
    s = load_streams([synth_dir], cache=False)
    r = s.report
    assert not r.skipped_events and not r.skipped_datapoints
    assert not r.notes.get("gap_split") and not r.notes.get("out_of_order")
    info = json.loads((synth_dir / INFO_NAME).read_text())
    assert r.datapoints_read == info["datapoints"]
    by_type = {}
    for e in s.events:
        by_type[e.type] = by_type.get(e.type, 0) + 1
    assert by_type == {"Seizure": 12, "False Alarm": 12, "NDA": 8}
    assert sorted({e.user_id for e in s.events}) == ["1", "2", "3", "4"]
    assert all(e.n_datapoints_3d == e.n_datapoints for e in s.events)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    spec = SynthSpec(users=2, seizures_per_user=1, false_alarms_per_user=1, nda_per_user=1)
    write_synthetic(tmp_path / "a", spec)
    write_synthetic(tmp_path / "b", spec)
    write_synthetic(tmp_path / "c", SynthSpec(**{**spec.__dict__, "seed": 1}))
    for name in ("osdb_synth_allSeizures.json", "osdb_synth_ndaEvents.json"):
        a, b, c = ((tmp_path / d / name).read_bytes() for d in "abc")
        assert a == b and a != c


def test_ndjson_output_reads_the_same(tmp_path):
    spec = SynthSpec(users=2, seizures_per_user=1, false_alarms_per_user=1, nda_per_user=1)
    write_synthetic(tmp_path / "j", spec)
    write_synthetic(tmp_path / "n", SynthSpec(**{**spec.__dict__, "format": "ndjson"}))
    a = load_streams([tmp_path / "j"], cache=False)
    b = load_streams([tmp_path / "n"], cache=False)
    assert (tmp_path / "n" / "osdb_synth_ndaEvents.ndjson").exists()
    assert np.array_equal(a.samples, b.samples)


def test_injected_defects_are_exactly_what_the_reader_reports(tmp_path):
    spec = SynthSpec(users=3, seizures_per_user=2, false_alarms_per_user=2, nda_per_user=2,
                     seed=4, defect_rate=0.08)
    result = write_synthetic(tmp_path, spec)
    d = result.defects
    assert sum(d.values()) > 10 and len(d) == 8
    r = load_streams([tmp_path], cache=False).report
    skips = ("no_rawData", "wrong_length", "nan_or_null", "implausible_magnitude")
    assert r.skipped_datapoints == {k: d[k] for k in (*skips, "duplicate_time", "logging_copy")
                                    if d[k]}
    assert r.notes["out_of_order"] == d["out_of_order"]
    # a skipped datapoint inside an event leaves a 10 s hole: also a gap
    assert r.notes["gap_split"] == d["gap_split"] + sum(d[k] for k in skips)


@pytest.mark.parametrize("bad", [dict(users=0), dict(nda_per_user=-1), dict(defect_rate=2)])
def test_generator_rejects_bad_specs(tmp_path, bad):
    with pytest.raises(ValueError):
        write_synthetic(tmp_path, SynthSpec(**bad))


# --------------------------------------------------------------------------- plausibility

def _dominant_hz(x):
    x = x - x.mean()
    p = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / 25)
    p[f < 0.8] = 0
    return f[np.argmax(p)]


def _jerks_per_s(x, above_mg=1300):
    peaks = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:]) & (x[1:-1] > above_mg)
    return peaks.sum() / (len(x) / 25)


def _magnitude(ev):
    return np.concatenate([d["rawData"] for d in ev["datapoints"]]).astype(float)


def test_loud_seizures_have_large_jerks_that_slow_then_calm():
    rng = np.random.default_rng(11)
    for uid in range(6):
        u = motion.UserProfile.draw(uid, rng)
        sig, ph = motion.tonic_clonic(250, rng, u, tonic=True, scale=1.0, clonic_s=(60, 80))
        m = np.linalg.norm(sig, axis=1)
        clonic = m[ph.clonic_start:ph.clonic_end]
        assert clonic.max() > 1800  # jerks above 1.8 g
        rates = [_jerks_per_s(clonic[a:a + 250]) for a in range(0, len(clonic) - 249, 250)]
        assert max(rates[:-1]) > 1.5 * rates[-1], (uid, rates)  # the clonic rate slows
        post = m[ph.clonic_end + 10 * 25: ph.clonic_end + 30 * 25]
        assert post.std() < 0.2 * clonic.std()  # post-ictal calm


def _inside_movement(folder):
    """Movement % (the app's gate quantity) of the datapoints inside marked seizures, by kind."""
    events = json.loads((folder / "osdb_synth_allSeizures.json").read_text())
    by_kind = {}
    for ev in events:
        kind = ev["desc"].removeprefix("synthetic ").split(" seizure")[0]
        start, end = np.array(ev["seizureTimes"]) + parse_time(ev["dataTime"])
        for d in ev["datapoints"]:
            if start <= parse_time(d["dataTime"]) <= end:
                by_kind.setdefault(kind, []).append(
                    float(movement_pct(np.asarray([d["rawData"]], float))[0]))
    return {k: np.asarray(v) for k, v in by_kind.items()}


def test_a_release_has_every_seizure_kind_with_real_wrists_movement(tmp_path):
    """Calibrated against 59 real seizures (docs/data.md): inside the marked seizure the median
    datapoint moves about 7 % and about 40 % fall under the app's 5 % gate; the generator's
    first seizures moved 35 % with 18 % under the gate."""
    # the demo's seizures (seed 0)
    write_synthetic(tmp_path, SynthSpec(false_alarms_per_user=0, nda_per_user=0))
    by_kind = _inside_movement(tmp_path)
    assert set(by_kind) == set(motion.SEIZURE_KINDS)
    every = np.concatenate(list(by_kind.values()))
    assert 3 < np.median(every) < 15
    assert 0.25 < np.mean(every < 5) < 0.6
    # subtle seizures barely pass the gate; tonic-clonic ones are the loudest
    assert np.median(by_kind["subtle"]) < 6 < np.median(by_kind["tonic-clonic"]) or \
        np.median(by_kind["subtle"]) < np.median(by_kind["tonic-clonic"])
    subtypes = {e["subType"] for e in json.loads(
        (tmp_path / "osdb_synth_allSeizures.json").read_text())}
    assert subtypes == {"Tonic-Clonic", "Other", "Tonic", "Aura"}


def test_watches_differ_in_calibration_and_users_in_seizures():
    from osdml.data.synthetic import user_profiles

    users = user_profiles(SynthSpec(users=12))
    gains = np.array([[np.mean(u.gain), np.mean(u.gain_2)] for u in users])
    assert gains.min() < 1.1 and gains.max() > 1.25  # some watches read 1.3-1.7 g at rest
    assert (np.abs(gains[:, 0] - gains[:, 1]) > 0.2).any()  # a user's two watches differ
    assert np.ptp([u.severity for u in users]) > 0.2
    assert len({np.argmax(u.seizure_habits) for u in users}) > 1


def test_look_alikes_range_from_subtle_to_loud(tmp_path):
    write_synthetic(tmp_path, SynthSpec(users=4, seizures_per_user=0, false_alarms_per_user=8,
                                        nda_per_user=0, seed=5))
    move = []
    for ev in json.loads((tmp_path / "osdb_synth_falseAlarms.json").read_text()):
        x = np.array([d["rawData"] for d in ev["datapoints"]], float)
        move.append(np.percentile(100 * x.std(axis=1) / x.mean(axis=1), 90))
    assert min(move) < 8 and max(move) > 20, move


def test_rest_reads_one_g_and_walking_has_a_step_rhythm():
    rng = np.random.default_rng(0)
    for uid in range(5):
        u = motion.UserProfile.draw(uid, rng)
        rest = np.linalg.norm(motion.rest(2500, rng, u), axis=1)
        assert np.median(rest) == pytest.approx(1000, abs=30)
        walk = np.linalg.norm(motion.walking(2500, rng, u), axis=1)
        f = _dominant_hz(walk)
        # the arm swing (half the step rate), the step rate or its first harmonic (heel strikes)
        assert min(abs(f / (k * u.step_hz) - 1) for k in (0.5, 1, 2)) < 0.1, (u.step_hz, f)


def test_users_differ_in_wrist_orientation_and_amplitude():
    spec = SynthSpec(users=5)
    from osdml.data.synthetic import user_profiles

    users = user_profiles(spec)
    poses = np.array([u.rest_pose for u in users])
    assert len({tuple(np.round(p, 3)) for p in poses}) == 5
    assert np.ptp([u.amplitude for u in users]) > 0.1


@pytest.mark.parametrize("name", sorted(motion.ACTIVITIES))
def test_every_activity_handles_any_length(name):
    rng = np.random.default_rng(1)
    u = motion.UserProfile.draw(1, rng)
    for n in (1, 2, 7, 8, 9, 31, 125, 1000):
        x = motion.ACTIVITIES[name](n, rng, u)
        assert x.shape == (n, 3) and np.isfinite(x).all(), (name, n)
