"""Plots and the Markdown/HTML report of a run: every input, however empty, gives a file."""

from __future__ import annotations

import re

import numpy as np
import pytest

from factory_traces import trace
from osdml.app.engine import AppSettings
from osdml.evaluate.events import EventTrace
from osdml.evaluate.report import (
    _cell,
    plot_confusion,
    plot_per_user,
    plot_roc,
    plot_sweep,
    plot_timeline,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def _trace(seizure_start_s: float | None = 20.0, n: int = 12) -> EventTrace:
    p = list(np.clip(np.linspace(0.0, 1.0, n), 0, 1))
    p[:3] = [None] * 3  # the buffer fills first
    return trace(p, 1, seizure_start_s=seizure_start_s, movement=[1.0, 20.0] * (n // 2),
                 osd=[i % 4 == 0 for i in range(n)],
                 recorded=np.array(([0, -1, 5, 1, 2, 2] * 4)[:n]), subtype="Tonic-Clonic")


def _empty_trace() -> EventTrace:
    return trace([], 1)


def test_roc_writes_png_for_normal_one_class_and_empty_input(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    p[5] = np.nan
    out = plot_roc({"fold 1": (y, p), "one class": (np.ones(10, int), np.linspace(0, 1, 10)),
                    "with None": ([0, 1, None, 1], [0.1, 0.9, 0.5, None])},
                   tmp_path / "roc.png", title="ROC")
    assert out == tmp_path / "roc.png"
    assert _is_png(out)
    for name, curves in [("empty", {}), ("none", {"a": (None, None)}),
                         ("onlyone", {"a": (np.zeros(5, int), np.zeros(5))}),
                         ("mismatch", {"a": (np.array([0, 1]), np.array([0.5]))})]:
        assert _is_png(plot_roc(curves, tmp_path / f"{name}.png"))


def test_sweep_writes_png_with_baseline_and_for_missing_values(tmp_path):
    rows = [{"threshold": t, "sensitivity": 1 - t / 2, "far_24h": 20 * (1 - t)}
            for t in np.linspace(0.1, 0.9, 9)]
    rows.append({"threshold": 0.95, "sensitivity": None, "far_24h": float("nan")})
    out = plot_sweep({"all folds": rows, "empty": []}, tmp_path / "sweep.png", threshold=0.5,
                     baseline=(0.7, 3.2), title="sweep")
    assert _is_png(out)
    assert _is_png(plot_sweep({}, tmp_path / "e.png", threshold=0.5))
    none_rows = [{"threshold": None, "sensitivity": None, "far_24h": None}]
    assert _is_png(plot_sweep({"a": none_rows, "b": None}, tmp_path / "n.png", threshold=0.5,
                              baseline=(None, None)))


def test_confusion_wraps_panels_and_survives_bad_matrices(tmp_path):
    mats = {f"fold {i}": np.array([[50, 3], [2, 9]]) for i in range(6)}
    mats["none cells"] = np.array([[1, None], [None, 0]], dtype=object)
    mats["wrong shape"] = np.zeros(3)
    mats["missing"] = None
    assert _is_png(plot_confusion(mats, tmp_path / "cm.png", title="confusion"))
    assert _is_png(plot_confusion({}, tmp_path / "e.png"))
    assert _is_png(plot_confusion({"zeros": np.zeros((2, 2), int)}, tmp_path / "z.png"))


def test_per_user_leaves_out_users_without_seizures(tmp_path):
    per_user = {"u1": {"seizure_events": 4, "sensitivity": 0.75, "osd_sensitivity": 0.5},
                "u2": {"seizure_events": 1, "sensitivity": None, "osd_sensitivity": 1.0},
                "u3": {"seizure_events": 0, "sensitivity": None, "osd_sensitivity": None}}
    assert _is_png(plot_per_user(per_user, tmp_path / "users.png", title="per user"))
    assert _is_png(plot_per_user({}, tmp_path / "e.png"))
    no_seizures = {"u3": {"seizure_events": 0}, "u4": {"seizure_events": None}, "u5": {}}
    assert _is_png(plot_per_user(no_seizures, tmp_path / "n.png"))


@pytest.mark.parametrize("start", [20.0, None])
def test_timeline_with_and_without_seizure_start_and_accel(tmp_path, start):
    t = np.arange(0, 90, 0.04)
    g = 1 + 0.3 * np.sin(t)
    g[100:130] = np.nan
    tr = _trace(seizure_start_s=start)
    assert _is_png(plot_timeline(tr, AppSettings(), tmp_path / "a.png", accel=(t, g),
                                 title="e1"))
    assert _is_png(plot_timeline(tr, AppSettings(osd=False), tmp_path / "b.png", accel=None))


def test_timeline_of_empty_trace(tmp_path):
    assert _is_png(plot_timeline(_empty_trace(), AppSettings(), tmp_path / "e.png",
                                 accel=(np.empty(0), np.empty(0))))
    nan_accel = (np.arange(3.0), np.full(3, np.nan))
    assert _is_png(plot_timeline(_empty_trace(), AppSettings(), tmp_path / "n.png",
                                 accel=nan_accel))


def test_cell_formats_none_and_floats():
    assert _cell(None) == "-"
    assert _cell(float("nan")) == "-"
    assert _cell(0.123456) == "0.123"
    assert _cell(np.float32(0.5)) == "0.5"
    assert _cell(1234.56789) == "1234.568"
    assert _cell(0.000123456) == "0.000123"
    assert _cell(3) == "3"
    assert _cell("a") == "a"


@pytest.fixture
def report(tmp_path):
    img = tmp_path / "figs" / "roc.png"
    plot_roc({}, img)
    blocks = [("h2", "Results"), ("p", "beware <script>alert(1)</script> & more"),
              ("table", ["fold", "sensitivity", "note"],
               [[1, 0.876543, "a|b"], [2, None, "ok"]]),
              ("image", img, "ROC curves"),
              ("image", tmp_path / "figs" / "gone.png", "lost figure")]
    md, html = write_report(tmp_path / "out" / "report.md", tmp_path / "out" / "report.html",
                            "Run <1>", blocks)
    return md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


def test_report_markdown_has_table_rows_and_relative_image_links(report):
    md, _ = report
    assert md.startswith("# Run <1>\n")
    assert "## Results" in md
    assert "| fold | sensitivity | note |" in md
    assert "| 1 | 0.877 | a\\|b |" in md
    assert "| 2 | - | ok |" in md
    assert "![ROC curves](../figs/roc.png)" in md


def test_report_html_is_self_contained_and_escaped(report):
    _, html = report
    assert "data:image/png;base64,iVBORw0KGgo" in html  # base64 of the PNG signature
    srcs = re.findall(r'src\s*=\s*["\']([^"\']*)', html, flags=re.I)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"\b(href|url)\s*[=(]", html, flags=re.I)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<h1>Run &lt;1&gt;</h1>" in html
    assert "Image missing" in html and "gone.png" in html
    assert "<td>0.877</td>" in html and "<td>a|b</td>" in html


def test_report_rejects_unknown_block(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        write_report(tmp_path / "r.md", tmp_path / "r.html", "t", [("video", "x")])
    assert not (tmp_path / "r.md").exists()
