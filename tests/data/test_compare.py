"""osdml data compare: per-group feature distributions of two sets of OSDB files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from osdml.cli import main
from osdml.data.compare import (
    DATAPOINT_FEATURES,
    compare_sets,
    datapoint_features,
    distances,
    read_set,
    summary_distance,
    verdict,
)
from osdml.data.osdb import parse_time
from osdml.data.synthetic import SynthSpec, write_synthetic
from osdml.errors import InputError

SPEC = SynthSpec(users=2, seizures_per_user=3, false_alarms_per_user=1, nda_per_user=1, seed=5)
SEIZURES = "osdb_synth_allSeizures.json"


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Two folders generated with the same seed, and a copy of the first whose datapoints
    inside the seizures (seizureTimes) barely move: deviations from the mean x 0.05."""
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    write_synthetic(a, SPEC)
    write_synthetic(b, SPEC)
    still = tmp_path_factory.mktemp("still")
    for p in a.glob("*.json"):
        shutil.copy(p, still / p.name)
    events = json.loads((a / SEIZURES).read_text())
    changed = 0
    for ev in events:
        start, end = ev["seizureTimes"]
        t0 = parse_time(ev["dataTime"])
        for dp in ev["datapoints"]:
            if start <= parse_time(dp["dataTime"]) - t0 <= end:
                x = np.asarray(dp["rawData"], dtype=np.float64)
                dp["rawData"] = (x.mean() + 0.05 * (x - x.mean())).round(2).tolist()
                changed += 1
    assert changed > 20
    (still / SEIZURES).write_text(json.dumps(events))
    return a, b, still


def test_identical_sets_are_close_everywhere(twins):
    a, b, _ = twins
    cmp = compare_sets([a], [b])
    d = cmp.to_dict()
    assert cmp.groups() == ["Seizure/all", "Seizure/inside", "Seizure/outside",
                            "False Alarm/all", "NDA/all"]
    assert d["only_in_a"] == d["only_in_b"] == []
    assert {r["feature"] for r in d["rows"]} >= {*DATAPOINT_FEATURES, "seizure_duration_s"}
    assert all(r["ks_d"] == 0.0 and r["verdict"] == "close" for r in d["rows"])
    assert all(r["median_a"] == r["median_b"] and r["n_a"] == r["n_b"] >= 5 for r in d["rows"])
    assert d["a"]["groups"] == d["b"]["groups"]
    assert d["a"]["events"] == 2 * (3 + 1 + 1)
    assert set(distances(cmp).values()) == {0.0} and summary_distance(d) == 0.0
    json.dumps(d, allow_nan=False)  # JSON-ready


def test_still_seizures_are_far_inside_and_untouched_groups_close(twins):
    a, _, still = twins
    cmp = compare_sets([a], [still])
    d = distances(cmp)
    verdicts = {(r["group"], r["feature"]): r["verdict"] for r in cmp.rows}
    for feature in ("movement_pct", "mag_range_mg", "roi_power"):
        assert verdicts["Seizure/inside", feature] == "far", feature
    inside = {r["feature"]: r for r in cmp.rows if r["group"] == "Seizure/inside"}
    assert inside["movement_pct"]["median_b"] < 0.1 * inside["movement_pct"]["median_a"]
    assert inside["under_gate"]["mean_b"] > inside["under_gate"]["mean_a"]
    # what was not touched: outside the seizures, other types, mean level, seizure times
    for group in ("Seizure/outside", "False Alarm/all", "NDA/all"):
        assert all(d[group, f] == 0.0 for f in DATAPOINT_FEATURES), group
    assert d["Seizure/all", "seizure_duration_s"] == 0.0
    assert verdicts["Seizure/inside", "mag_p50_mg"] in ("close", "differs")
    assert summary_distance(cmp, groups=["Seizure/inside"]) > \
        summary_distance(cmp, groups=["NDA/all"]) == 0.0


def _event(eid, times, seizure_times=None, etype="Seizure", t_event=1_700_000_000.0):
    from datetime import UTC, datetime

    rng = np.random.default_rng(eid)

    def iso(t):
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    ev = {"id": eid, "userId": 1, "type": etype, "subType": None, "dataTime": iso(t_event),
          "datapoints": [{"dataTime": iso(t_event + dt), "hr": 70,
                          "rawData": (1000 + rng.normal(0, 30, 125)).round(1).tolist()}
                         for dt in times]}
    if seizure_times is not None:
        ev["seizureTimes"] = seizure_times
    return ev


def test_seizure_phases_follow_seizure_times(tmp_path):
    f = tmp_path / "hand.json"
    f.write_text(json.dumps([
        _event(1, [-20, -15, -10, -5, 0, 5, 10], [-10, 5]),  # 4 inside (bounds included), 3 out
        _event(2, [0, 5]),  # a seizure without seizureTimes: "all" only
        _event(3, [-5, 0, 5], [-5, 5], etype="False Alarm"),  # phases only for seizures
    ]))
    s = read_set([f])
    counts = s.datapoints()
    assert counts == {"Seizure/all": 9, "Seizure/inside": 4, "Seizure/outside": 3,
                      "False Alarm/all": 3}
    assert s.events == {"Seizure/all": 2, "Seizure/inside": 1, "Seizure/outside": 1,
                        "False Alarm/all": 1}
    assert s.group_values("Seizure/all", "seizure_duration_s").tolist() == [15.0]
    assert s.group_values("Seizure/inside", "seizure_duration_s").size == 0
    assert s.groups() == ["Seizure/all", "Seizure/inside", "Seizure/outside", "False Alarm/all"]
    cmp = compare_sets([f], [f])
    assert {r["verdict"] for r in cmp.rows if r["group"] == "Seizure/inside"} == {"too few"}
    assert {r["verdict"] for r in cmp.rows if r["group"] == "Seizure/all"
            and r["feature"] != "seizure_duration_s"} == {"close"}


def test_features_of_known_signals():
    t = np.arange(125) / 25.0
    raw = np.stack([1000 + 100 * np.sin(2 * np.pi * 4 * t), np.full(125, 1000.0)])
    f = datapoint_features(raw, gate_pct=5.0)
    assert all(v.dtype == np.float32 and v.shape == (2,) for v in f.values())
    assert f["dominant_hz"][0] == pytest.approx(4.0) and np.isnan(f["dominant_hz"][1])
    assert f["movement_pct"][0] == pytest.approx(100 * 100 / np.sqrt(2) / 1000, rel=1e-4)
    assert f["under_gate"].tolist() == [0.0, 1.0]
    assert f["mag_p50_mg"][1] == 1000 and f["mag_range_mg"][1] == 0
    assert f["roi_power"][0] > 0 and f["roi_power"][1] == 0
    assert verdict(0.05, 10, 10) == "close" and verdict(0.1, 10, 10) == "differs"
    assert verdict(0.3, 10, 10) == "far" and verdict(0.9, 4, 10) == "too few"


def test_cli_writes_json_and_html(twins, tmp_path, capsys):
    a, _, still = twins
    out = tmp_path / "cmp"
    assert main(["data", "compare", str(a / SEIZURES), "--against", str(still / SEIZURES),
                 "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "compare.json").read_text())
    assert printed == saved and saved["gate_pct"] == 5.0
    assert [f.rsplit("/", 1)[-1] for f in saved["b"]["files"]] == [SEIZURES]
    html = (out / "compare.html").read_text()
    assert "data:image/png;base64," in html and "Seizure/inside" in html and "far" in html
    nda = "osdb_synth_ndaEvents.json"  # one group: one plot to draw
    assert main(["data", "compare", str(a / nda), "-a", str(still / nda), "-o", str(out),
                 "--gate-pct", "3"]) == 0
    table = capsys.readouterr().out
    assert "NDA/all" in table and "movement_pct" in table and "close" in table
    assert json.loads((out / "compare.json").read_text())["gate_pct"] == 3.0


@pytest.mark.parametrize("bad", ["missing.json", "notosdb.json"])
def test_cli_bad_input_is_one_line_exit_2(twins, tmp_path, capsys, bad):
    a, _, _ = twins
    (tmp_path / "notosdb.json").write_text('{"name": "not an OSDB file"}')
    path = str(tmp_path / bad)
    code = main(["data", "compare", str(a), "--against", path, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and path in err and "Traceback" not in err
    assert not (tmp_path / "o" / "compare.json").exists()


def test_a_set_with_no_event_is_an_input_error(twins, tmp_path):
    a, _, _ = twins
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(InputError, match="no readable event"):
        compare_sets([a], [tmp_path / "empty.json"])
    with pytest.raises(InputError, match="percentage"):
        compare_sets([a], [a], gate_pct=120)
