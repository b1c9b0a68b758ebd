"""Does the demo teach a real detector? The demo model replayed on real seizures.

Trains the demo (``osdml demo``, the same as ``make demo``) into a fresh folder, or takes an
existing demo folder, and replays its ``model.pte`` the way the app runs it (``osdml replay``:
one inference per 5 s datapoint, the movement gate, p > threshold, the WarnTime / AlarmTime
counter, model alone) over:

- the real seizures of ``--real`` (by default the 59 seizures from two users in
  ``/work/shared/osdb-samples/real_seizures_2users.json``; never used for training, only here
  and for the generator's statistics): seizures alarmed at the app's default settings
  (threshold 50 %, gate 5 %) and at the threshold and gate the run tuned, the model alone and
  with the app's built-in OSD algorithm voting beside it (ANY), and the model's alarms per
  user (one real user's watch reads 1 g at rest, the other's about 1.5 g);
- the demo's own test events (the run's ``split.json``), at the same two settings: sensitivity
  and false alarms per 24 h.

Then ``osdml data compare`` of the real file against the demo data: the Kolmogorov-Smirnov
distance of every statistic, and, with ``--before DIR`` (a release written by an older
generator), the same distances for it beside them.

    .venv/bin/python benchmarks/demo_real.py --train --markdown
    .venv/bin/python benchmarks/demo_real.py --demo outputs/demo --before /tmp/before-data

Writes ``outputs/bench-demo-real/demo_real.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = Path("/work/shared/osdb-samples/real_seizures_2users.json")
OUT = ROOT / "outputs/bench-demo-real"
DEFAULTS = {"threshold_pct": 50.0, "gate_pct": 5.0}


def replay_summary(model: Path, files: list[Path], event_ids: set[str] | None,
                   overrides: dict) -> dict:
    """The app engine's event summary of `model` alone and with the OSD algorithm (ANY)."""
    from osdml.app.engine import AppSettings
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.evaluate.replay import load_model, replay

    streams = load_streams([str(f) for f in files], cache=False)
    sel = select_events(streams)
    keep = [k for k, i in enumerate(sel.indices)
            if event_ids is None or streams.events[int(i)].id in event_ids]
    m = load_model(model, model.name, AppSettings(), overrides)
    result = replay([m], streams, sel.indices[keep], sel.labels[keep], m.settings)
    s = result.summary
    by_user: dict[str, list[int]] = {}
    for row in result.rows[m.name]:
        if row["label"] == 1:
            hit = by_user.setdefault(str(row["user"]), [0, 0])
            hit[0] += bool(row["alarm"])
            hit[1] += 1
    return {"settings": m.settings.to_dict(), "model": s["models"][0]["events"]["model"],
            "model_by_user": by_user,
            "combined": s["combined"], "osd": s["osd"], "recorded": s["recorded"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", action="store_true", help="run osdml demo into OUT/demo first")
    ap.add_argument("--demo", type=Path, default=ROOT / "outputs/demo",
                    help="demo folder (data/ and run/) when not --train")
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--before", type=Path, help="a release of the older generator")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    demo = args.demo
    record: dict = {}
    if args.train:
        demo = OUT / "demo"
        t0 = time.perf_counter()
        subprocess.run([str(ROOT / ".venv/bin/osdml"), "demo", "--out", str(demo), "-q"],
                       check=True)
        record["demo_wall_s"] = round(time.perf_counter() - t0, 1)
    run, data = demo / "run", demo / "data"
    model = run / "model.pte"
    split = json.loads((run / "split.json").read_text())["splits"][0]
    test_ids = set(split["test"]["events"])

    rows = []
    for label, overrides in (("app defaults 50 / 5", DEFAULTS), ("run's tuned", {})):
        real = replay_summary(model, [args.real], None, overrides)
        own = replay_summary(model, [data], test_ids, overrides)
        st = real["settings"]
        rows.append({
            "settings": f"{label} ({st['threshold_pct']:g} / {st['gate_pct']:g})",
            "real alarmed, model": f"{real['model']['detected']}/{real['model']['seizure_events']}",
            "real alarmed, model + OSD": f"{real['combined']['detected']}/"
                                         f"{real['combined']['seizure_events']}",
            "real alarmed, OSD alone": f"{real['osd']['detected']}/{real['osd']['seizure_events']}",
            "real alarmed by user, model": ", ".join(
                f"{u}: {k}/{n}" for u, (k, n) in sorted(real["model_by_user"].items())),
            "demo test sens.": f"{own['model']['sensitivity']:.2f}",
            "demo test FAR/24h": f"{own['model']['far_24h']:.1f}",
            "demo test FAR/24h + OSD": f"{own['combined']['far_24h']:.1f}",
        })
        record[label] = {"real": real, "demo_test": own}
    print_rows(rows, args.markdown)

    from osdml.data.compare import compare_sets

    print()
    after = compare_sets([args.real], [data]).to_dict()
    before = compare_sets([args.real], [args.before]).to_dict() if args.before else None
    record["compare_after"], record["compare_before"] = after, before
    old = {(r["group"], r["feature"]): r for r in (before or {}).get("rows", [])}
    drows = []
    for r in after["rows"]:
        b = old.get((r["group"], r["feature"]))
        key = "mean" if r["feature"] == "under_gate" else "median"  # the share under the gate
        drows.append({"group": r["group"], "feature": r["feature"],
                      "real median": _g(r[f"{key}_a"]),
                      **({"before: median": _g(b[f"{key}_b"]) if b else "-",
                          "before: KS D": _g(b["ks_d"]) if b else "-"} if before else {}),
                      "demo median": _g(r[f"{key}_b"]), "KS D": _g(r["ks_d"]),
                      "verdict": r["verdict"]})
    print_rows(drows, args.markdown)
    (OUT / "demo_real.json").write_text(json.dumps({"rows": rows, **record}, indent=1,
                                                   default=str))
    return 0


def _g(v) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    sys.exit(main())
