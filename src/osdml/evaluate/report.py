"""Plots of a run (matplotlib, written as PNG without a display) and the run's report.

Every plot is written atomically as a PNG and survives empty input and None/NaN values: an axis
without data shows a "no data" note. ``write_report`` writes the same content twice: Markdown
linking the PNGs, and one self-contained HTML file with the PNGs embedded.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from osdml.app.engine import STATE_NAMES
from osdml.fileio import atomic_write


def plot_training(history: list[dict[str, Any]], chosen_epoch: int | None, path: str | Path,
                  title: str = "") -> Path:
    """Loss, validation sensitivity and false-positive rate per epoch, chosen epoch marked.

    Parameters
    ----------
    history : list of dict
        ``metrics.csv`` rows: ``epoch`` (from 1), ``train_loss``, ``val_loss``, ``val_sensitivity``,
        ``val_fpr``.
    chosen_epoch : int or None
    path : path-like
        PNG file, written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def col(key):
        return [float("nan") if r.get(key) is None else r[key] for r in history]

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_rate) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, col("train_loss"), label="train loss")
    ax_loss.plot(epochs, col("val_loss"), label="validation loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_rate.plot(epochs, col("val_sensitivity"), label="validation sensitivity")
    ax_rate.plot(epochs, col("val_fpr"), label="validation false-positive rate")
    ax_rate.set_xlabel("epoch")
    ax_rate.set_ylim(-0.02, 1.02)
    for ax in (ax_loss, ax_rate):
        if chosen_epoch is not None:
            ax.axvline(chosen_epoch, color="grey", linestyle="--", label="chosen epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def _figure(*args, **kwargs):
    """A matplotlib Figure outside pyplot (Agg canvas, nothing to close) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize"))
    return fig, fig.subplots(*args, **kwargs)


def _save(fig, path: str | Path, title: str = "") -> Path:
    """Title and lay out `fig`, write it as PNG atomically."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return Path(path)


def _note(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _num(v: Any) -> float:
    """`v` as float; None and anything not numeric become NaN."""
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


def _floats(values: Any) -> np.ndarray:
    """Flat float64 array of `values`; None (and None entries) become NaN."""
    if values is None:
        return np.empty(0)
    return np.array([_num(v) for v in np.ravel(np.asarray(values, dtype=object))])


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
             title: str = "") -> Path:
    """ROC curve per name with its AUC, and the chance diagonal; returns `path`.

    Parameters
    ----------
    curves : dict
        Name -> (labels, p_seizure): 0/1 ints and floats in 0..1, both of shape (n,). Pairs
        with a None/NaN member are dropped; a name left with one class (or with arrays of
        different lengths) is skipped with a note in the legend.
    path : path-like
        PNG file, written atomically.
    """
    from sklearn.metrics import auc, roc_curve

    fig, ax = _figure(figsize=(5.2, 4.8))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    drawn = 0
    for name, pair in (curves or {}).items():
        y, s = (_floats(v) for v in (pair if pair is not None else (None, None)))
        ok = np.isfinite(y) & np.isfinite(s) if len(y) == len(s) else np.zeros(0, bool)
        if len(np.unique(y[ok] if len(ok) else [])) < 2:
            why = "one class only" if len(y) == len(s) else "lengths differ"
            ax.plot([], [], " ", label=f"{name}: skipped ({why})")
            continue
        fpr, tpr, _ = roc_curve(y[ok].astype(np.int64), s[ok])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        drawn += 1
    if not drawn:
        _note(ax)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false-positive rate",
           ylabel="true-positive rate (sensitivity)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path, title)


def plot_sweep(sweeps: dict[str, list[dict]], path: str | Path, threshold: float,
               baseline: tuple[float | None, float | None] | None = None,
               title: str = "") -> Path:
    """Event sensitivity against false alarms per 24 h over a threshold sweep; returns `path`.

    Parameters
    ----------
    sweeps : dict
        Name -> rows with ``threshold``, ``sensitivity`` (0..1 or None) and ``far_24h`` (false
        alarms per 24 h or None). Rows with a None/NaN value are not drawn.
    path : path-like
        PNG file, written atomically. The x axis is linear below 1 and logarithmic above.
    threshold : float
        The configured threshold: the row with the nearest threshold is circled per name.
    baseline : (sensitivity, far_24h) or None
        The OpenSeizureDetector built-in algorithm by the app's engine, a black star labelled
        "OSD algorithm".
    """
    fig, ax = _figure(figsize=(6.4, 4.6))
    drawn = 0
    for name, rows in (sweeps or {}).items():
        pts = sorted((_num(r.get("threshold")), _num(r.get("far_24h")),
                      _num(r.get("sensitivity")))
                     for r in (rows or []) if r is not None)
        pts = np.array([q for q in pts if np.isfinite(q[1:]).all()]).reshape(-1, 3)
        if not len(pts):
            ax.plot([], [], " ", label=f"{name}: no data")
            continue
        (line,) = ax.plot(pts[:, 1], pts[:, 2], marker=".", label=name)
        drawn += 1
        known = np.flatnonzero(np.isfinite(pts[:, 0]))
        if len(known) and math.isfinite(_num(threshold)):
            i = known[np.argmin(np.abs(pts[known, 0] - _num(threshold)))]
            ax.plot(pts[i, 1], pts[i, 2], "o", ms=9, mfc="none", mew=2, color=line.get_color(),
                    label=f"{name} at threshold {pts[i, 0]:g}")
    if baseline is not None:
        sens, far = (_num(v) for v in baseline)
        ok = math.isfinite(sens) and math.isfinite(far)
        ax.plot(far if ok else [], sens if ok else [], "*" if ok else " ", ms=14, color="black",
                label="OSD algorithm" if ok else "OSD algorithm: no data")
        drawn += ok
    if not drawn:
        _note(ax)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set(ylim=(-0.02, 1.02), xlabel="false alarms per 24 h", ylabel="event sensitivity")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path, title)


def plot_confusion(matrices: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """One panel per name with its 2x2 confusion matrix, counts in the cells; returns `path`.

    Parameters
    ----------
    matrices : dict
        Name -> int array of shape (2, 2): rows the true class (0 non-seizure, 1 seizure),
        columns the predicted class. The colour is the fraction of the row (per-class recall).
        None or another size shows "no data"; None cells show "-".
    path : path-like
        PNG file, written atomically; at most 4 panels per row.
    """
    items = list((matrices or {}).items()) or [("", None)]
    ncols = min(4, len(items))
    nrows = math.ceil(len(items) / ncols)
    fig, axes = _figure(nrows, ncols, squeeze=False, figsize=(3.0 * ncols, 2.9 * nrows))
    for ax in axes.ravel()[len(items):]:
        ax.set_axis_off()
    names = ["non-seizure", "seizure"]
    for ax, (name, m) in zip(axes.ravel(), items, strict=False):
        ax.set_title(str(name), fontsize=9)
        m = _floats(m)
        if m.size != 4:
            _note(ax)
            ax.set(xticks=[], yticks=[])
            continue
        m = m.reshape(2, 2)
        frac = np.nan_to_num(m / np.maximum(np.nansum(m, axis=1, keepdims=True), 1))
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:g}" if math.isfinite(v) else "-", ha="center", va="center",
                    color="white" if frac[i, j] > 0.6 else "black", fontsize=11)
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=names, yticklabels=names,
               xlabel="predicted", ylabel="true")
        ax.tick_params(labelsize=8)
    return _save(fig, path, title)


def plot_per_user(per_user: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Event sensitivity per user, the model beside the OSD algorithm; returns `path`.

    Parameters
    ----------
    per_user : dict
        User id -> ``seizure_events`` (int), ``sensitivity`` and ``osd_sensitivity`` (0..1;
        None leaves the bar out, marked "n/a"). Users without seizure events are left out.
    path : path-like
        PNG file, written atomically.
    """
    rows = [(str(u), int(n), d) for u, d in (per_user or {}).items()
            if (n := _num((d or {}).get("seizure_events"))) > 0]  # NaN > 0 is False
    fig, ax = _figure(figsize=(max(5.0, 0.6 * len(rows) + 2.0), 4.0))
    x = np.arange(len(rows))
    for k, (key, label) in enumerate((("sensitivity", "model"),
                                      ("osd_sensitivity", "OSD algorithm"))):
        v, dx = np.array([_num(d.get(key)) for _, _, d in rows]), (k - 0.5) * 0.4
        if rows:
            ax.bar(x + dx, np.nan_to_num(v), width=0.4, label=label)
        for xi in x[~np.isfinite(v)]:
            ax.text(xi + dx, 0.01, "n/a", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{u} ({n})" for u, n, _ in rows], rotation=45, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="event sensitivity", xlabel="user (n seizures)")
    if rows:
        ax.legend(fontsize=8)
    else:
        _note(ax, "no seizure events")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path, title)


def plot_timeline(trace, settings, path: str | Path,
                  accel: tuple[np.ndarray, np.ndarray] | None = None, title: str = "") -> Path:
    """One event over time (s): acceleration, p(seizure) and the app's states; returns `path`.

    Parameters
    ----------
    trace : osdml.evaluate.events.EventTrace
        ``t_s`` (n,) and ``p`` (n_models, n): each model's p (NaN before its buffer is full),
        datapoints the movement gate set to p = 0 marked with an x; the app's states by its
        engine (``trace.engine``): the first model alone, the OSD algorithm alone, models + OSD
        combined, and the recorded ``alarmState``; ``seizure_start_s``, when not None, a
        vertical line on every axis.
    settings : osdml.app.engine.AppSettings
        The threshold (a dashed line), gate, counter and voting.
    path : path-like
        PNG file, written atomically.
    accel : (t_s, g) or None
        Acceleration magnitude in g against time in s, both of shape (k,); NaN breaks the line.
    """
    fig, (ax_g, ax_p, ax_s) = _figure(3, 1, sharex=True, figsize=(10, 6.6),
                                      gridspec_kw={"height_ratios": [2, 2, 1.3]})
    tg, g = (_floats(v) for v in (accel if accel is not None else (None, None)))
    n = min(len(tg), len(g))
    if n and np.isfinite(g[:n]).any():
        ax_g.plot(tg[:n], g[:n], lw=0.5, color="tab:blue")
    else:
        _note(ax_g, "no acceleration data")
    ax_g.set_ylabel("acceleration (g)")
    t = _floats(getattr(trace, "t_s", None))
    p = np.atleast_2d(np.asarray(getattr(trace, "p", np.empty((0, 0))), dtype=float))
    names = list(getattr(trace, "models", []))
    thr = float(settings.threshold)
    drawn = False
    for i, row in enumerate(p):
        if len(row) == len(t) and np.isfinite(row).any():
            name = names[i] if i < len(names) else f"model {i}"
            (line,) = ax_p.plot(t, row, "o-", ms=2.5, lw=1, label=f"{name} p(seizure)")
            gated = np.isfinite(row) & (np.asarray(trace.movement_pct) < settings.gate_pct)
            if gated.any():
                ax_p.plot(t[gated], row[gated], "x", color=line.get_color(), ms=6,
                          label=f"movement < {settings.gate_pct:g} %: the app uses p = 0")
            drawn = True
    if not drawn:
        _note(ax_p, "no decisions")
    ax_p.axhline(thr, color="tab:red", ls="--", lw=1, label=f"threshold {thr:g}")
    ax_p.set(ylim=(-0.02, 1.02), ylabel="p(seizure)")
    if len(t):
        states = {}
        if len(p) and len(p[0]) == len(t):
            states["model alone"] = trace.engine(settings, [0], osd=False).states
            if settings.osd:
                states["model + OSD"] = trace.engine(settings).states
        states["OSD algorithm"] = trace.engine(settings, [], osd=True).states
        rec = np.asarray(trace.recorded_state)
        if (rec >= 0).any():
            states["recorded"] = np.where(np.isin(rec, (1, 2)), rec, 0)
        styles = {"model alone": "-", "model + OSD": ":", "OSD algorithm": "--", "recorded": "-."}
        for name, st in states.items():
            ax_s.step(t, st, where="post", lw=1.3, ls=styles[name], label=name)
    if not ax_s.lines:
        _note(ax_s, "no alarm states")
    ax_s.set(yticks=[0, 1, 2], yticklabels=[STATE_NAMES[k] for k in (0, 1, 2)],
             ylim=(-0.3, 2.3), xlabel="time (s)")
    start = _num(getattr(trace, "seizure_start_s", None))
    for ax in (ax_g, ax_p, ax_s):
        if math.isfinite(start):
            ax.axvline(start, color="tab:purple", lw=1.2,
                       label=None if ax is ax_g else "seizure start")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    return _save(fig, path, title)


_CSS = ("body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;"
        "padding:.2em .5em;text-align:right}th{background:#eee}img{max-width:100%}"
        "figcaption{color:#555;font-size:.9em}.missing{color:#a00}")


def _cell(v: Any) -> str:
    """Table cell text: None/NaN "-"; floats with at most 3 decimals (3 significant digits
    below 1, so 0.000123 stays visible); everything else ``str``."""
    if v is None:
        return "-"
    if not isinstance(v, float | np.floating):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return "-" if math.isnan(v) else str(v)
    return f"{v:.3f}".rstrip("0").rstrip(".") if v == 0 or abs(v) >= 1 else f"{v:.3g}"


def write_report(md_path: str | Path, html_path: str | Path, title: str,
                 blocks: list[tuple]) -> tuple[Path, Path]:
    """Write the same report as Markdown (images linked) and as self-contained HTML.

    Parameters
    ----------
    md_path, html_path : path-like
        Output files, written atomically (UTF-8).
    title : str
    blocks : list of tuple
        In order: ``("h2", text)``, ``("p", text)``, ``("table", columns, rows)`` with `rows`
        a list of lists of cells, ``("image", png_path, caption)``. The Markdown links images
        relative to its own folder; the HTML embeds them as base64 ``data:`` URIs (a missing
        image becomes a paragraph saying so) and references nothing outside itself. A block
        of another kind raises ValueError before anything is written.

    Returns
    -------
    (Path, Path)
        `md_path` and `html_path`.
    """
    md_path, html_path, esc = Path(md_path), Path(html_path), html.escape
    md = [f"# {title}", ""]
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(str(title))}</title><style>{_CSS}</style></head><body>",
           f"<h1>{esc(str(title))}</h1>"]

    def md_row(cells):
        return "| " + " | ".join(_cell(c).replace("|", "\\|").replace("\n", " ")
                                 for c in cells) + " |"

    def html_row(cells, tag="td"):
        return "<tr>" + "".join(f"<{tag}>{esc(_cell(c))}</{tag}>" for c in cells) + "</tr>"

    for block in blocks or []:
        kind = block[0] if block else None
        if kind in ("h2", "p"):
            md += [f"## {block[1]}" if kind == "h2" else str(block[1]), ""]
            out.append(f"<{kind}>{esc(str(block[1]))}</{kind}>")
        elif kind == "table":
            cols, rows = list(block[1] or []), [list(r or []) for r in (block[2] or [])]
            md += [md_row(cols), "|" + "---|" * len(cols), *map(md_row, rows), ""]
            out += ["<table><thead>", html_row(cols, "th"), "</thead><tbody>",
                    *map(html_row, rows), "</tbody></table>"]
        elif kind == "image":
            png, caption = Path(block[1]), str(block[2] if len(block) > 2 else "")
            rel = Path(os.path.relpath(png.absolute(), md_path.absolute().parent)).as_posix()
            alt = caption.replace("[", "\\[").replace("]", "\\]")
            md += [f"![{alt}]({quote(rel)})", ""]
            try:
                data = base64.b64encode(png.read_bytes()).decode("ascii")
            except OSError:
                out.append(f'<p class="missing">Image missing: {esc(png.name)}'
                           + (f" ({esc(caption)})" if caption else "") + "</p>")
                continue
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                       f"<figcaption>{esc(caption)}</figcaption></figure>")
        else:
            raise ValueError(f"unknown report block kind: {kind!r}")
    out.append("</body></html>")
    with atomic_write(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(md).rstrip("\n") + "\n")
    with atomic_write(html_path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return md_path, html_path
