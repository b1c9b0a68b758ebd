"""int8 that keeps the model's decisions: calibration, fp32 layers and QAT, measured.

Takes the demo run's ``outputs/demo/run/model.pt`` (``make demo``) and its OSDB files,
divided by event as ``osdml convert`` divides them (every third event held out; the rest
calibrate and, for QAT, fine-tune), and builds int8 XNNPACK programs:

- ``ptq-256-hist-1by1``: before this change (256 windows, one at a time, histogram observer),
- ``ptq-1024-minmax-uncentred``: the input not centred (``quantize_int8(centre=False)``),
- ``ptq-1024-hist``, ``ptq-1024-minmax`` (the default), ``ptq-all-minmax``,
- ``ptq-1024-minmax+fp32:auto``: the most sensitive layers kept in fp32 (``--fp32-layers
  auto``),
- ``qat-2ep``: quantization-aware fine-tuning, 2 epochs at lr 1e-5 (``--qat-epochs 2``).

Each program runs in the ExecuTorch runtime on every input the app feeds the model over the
held-out events (one per 5 s datapoint) and over every event of
``/work/shared/osdb-samples/real_seizures_2users.json`` (59 real seizures, none used for
calibration), against the fp32 model: decision agreement, fp32-positive windows kept, SQNR of
the logits, and the app engine's per-event alarm (model alone, the run's tuned threshold and
gate) compared event by event. Size against the fp32 ``.pte``; latency p50 with ``osdml
bench`` (``--runs``, one thread, a fresh process per file).

    .venv/bin/python benchmarks/int8.py --runs 300 --markdown

Files go to ``outputs/bench-int8/``; the rows to ``outputs/bench-int8/int8.json`` too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "outputs/demo/run/model.pt"
DATA = ROOT / "outputs/demo/data"
REAL = Path("/work/shared/osdb-samples/real_seizures_2users.json")
OUT = ROOT / "outputs/bench-int8"


def app_inputs(files, spec, held_out_only: bool):
    """(streams, events, labels, starts) of every input the app feeds the model over the
    held-out events (every third selected event) or over all events."""
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.evaluate.events import buffer_windows

    streams = load_streams([str(f) for f in files])
    sel = select_events(streams)
    keep = np.arange(len(sel)) % 3 == 0 if held_out_only else np.ones(len(sel), bool)
    events, labels = sel.indices[keep], sel.labels[keep]
    starts = np.concatenate([buffer_windows(streams, int(e), spec.window_samples)[1]
                             for e in events])
    return streams, events, labels, np.unique(starts)


def alarms(streams, events, labels, starts, p, spec) -> np.ndarray:
    """The app engine's alarm (model alone) per event with p for the inputs at `starts`."""
    from osdml.app.engine import AppSettings
    from osdml.evaluate.events import p_lookup, traces_for

    a = spec.app_settings or {}
    settings = AppSettings(**{k: a[k] for k in ("threshold_pct", "gate_pct", "warn_s",
                                                   "alarm_s", "voting", "osd") if k in a})
    traces = traces_for(streams, events, labels, spec.window_samples,
                        p_lookup(starts, p, lambda s: (_ for _ in ()).throw(KeyError(s))))
    return np.array([len(t.engine(settings, osd=False).onsets) > 0 for t in traces])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated variant names")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch

    from osdml.app.engine import app_probability
    from osdml.export.bench import bench_files
    from osdml.export.pte import export_pte
    from osdml.export.quantize import (
        QatSettings,
        choose_fp32_layers,
        quantize_int8,
        real_windows,
    )
    from osdml.export.source import load_source
    from osdml.export.validate import artefact_logits, compare, eager_logits
    from osdml.pipeline import inputs_at

    torch.manual_seed(0)
    src = load_source(MODEL)
    model, spec = src.module().eval(), src.spec
    OUT.mkdir(parents=True, exist_ok=True)
    rw = real_windows([DATA], spec, n_calibration=0, n_held_out=2)
    side = rw.calibration

    def spread(n):
        n = len(side) if n <= 0 else n
        return side[np.unique(np.linspace(0, len(side) - 1, n).round().astype(int))]

    sets = {}
    for name, files, held in (("demo held-out", [DATA], True), ("real seizures", [REAL], False)):
        if not Path(files[0]).exists():
            continue
        streams, events, labels, starts = app_inputs(files, spec, held)
        x = inputs_at(streams, starts, spec.window_samples)
        ref = eager_logits(model, x)
        sets[name] = (streams, events, labels, starts, x, ref,
                      alarms(streams, events, labels, starts, app_probability(ref), spec))

    def ptq_1by1(n):  # what osdml convert did before: one window at a time
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        from osdml.export.quantize import _capture, _quantizer

        prepared = prepare_pt2e(_capture(model, spec), _quantizer("histogram"))
        with torch.no_grad():
            for w in spread(n):
                prepared(torch.from_numpy(np.ascontiguousarray(w[None])))
        return convert_pt2e(prepared), {}

    def ptq(n, observer, fp32=None, centre=True):
        extra = {}
        layers = []
        if fp32 == "auto":
            t = time.perf_counter()
            choice = choose_fp32_layers(model, spec, spread(n), observer=observer)
            layers = choice.layers
            extra = {"choice_s": round(time.perf_counter() - t)}
        return quantize_int8(model, spec, spread(n), observer=observer, fp32_layers=layers,
                             centre=centre), {"fp32_layers": ",".join(layers), **extra}

    def qat(epochs):
        return quantize_int8(model, spec, spread(1024), qat=QatSettings(
            side, rw.calibration_labels, epochs=epochs, lr=1e-5)), {}

    variants = {
        "ptq-256-hist-1by1": lambda: ptq_1by1(256),
        "ptq-1024-hist": lambda: ptq(1024, "histogram"),
        "ptq-1024-minmax-uncentred": lambda: ptq(1024, "minmax", centre=False),
        "ptq-1024-minmax": lambda: ptq(1024, "minmax"),
        "ptq-all-minmax": lambda: ptq(0, "minmax"),
        "ptq-1024-minmax+fp32:auto": lambda: ptq(1024, "minmax", "auto"),
        "qat-2ep": lambda: qat(2),
    }
    only = [v for v in args.only.split(",") if v]
    fp32_path = OUT / "fp32.pte"
    export_pte(model, spec, fp32_path, sidecar=False)
    paths = {}
    rows = []
    for name, make in variants.items():
        if only and name not in only:
            continue
        t = time.perf_counter()
        graph, extra = make()
        build_s = time.perf_counter() - t
        path = OUT / f"{name.replace(':', '-').replace('+', '_')}.pte"
        export_pte(graph, spec.model_copy(update={"quantization": "int8"}), path,
                   quantization="int8", sidecar=False)
        paths[name] = path
        row = {"variant": name, "build_s": round(build_s)}
        for set_name, (streams, events, labels, starts, x, ref, fp32_alarm) in sets.items():
            got = artefact_logits("pte", path, x)
            c = compare(ref, got)
            al = alarms(streams, events, labels, starts, app_probability(got), spec)
            tag = "demo" if set_name.startswith("demo") else "real"
            row[f"{tag} agree %"] = f"{100 * c['decision_agreement']:.2f}"
            row[f"{tag} pos kept %"] = ("-" if c["positive_agreement"] is None
                                        else f"{100 * c['positive_agreement']:.2f}")
            row[f"{tag} SQNR dB"] = f"{c['sqnr_db']:.1f}"
            row[f"{tag} alarms changed"] = f"{int((al != fp32_alarm).sum())}/{len(al)}"
        row["size x"] = f"{fp32_path.stat().st_size / path.stat().st_size:.2f}"
        row.update(extra)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    bench = bench_files([fp32_path, *paths.values()], runs=args.runs)
    p50 = {Path(b["file"]).name: b.get("p50_ms") for b in bench}
    for row, path in zip(rows, paths.values(), strict=True):
        f, q = p50.get(fp32_path.name), p50.get(path.name)
        row["p50 ms (fp32)"] = f"{q:.2f} ({f:.2f})" if f and q else "-"
    (OUT / "int8.json").write_text(json.dumps({"rows": rows, "bench": bench}, indent=1))
    print_rows(rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
