"""Printing a benchmark's rows: a Markdown table, or one `key=value` line per row."""

from __future__ import annotations


def cell(v) -> str:
    """Integers with thousands separators, everything else as it is."""
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def print_rows(rows: list[dict], markdown: bool) -> None:
    if not rows:
        return
    cols = list(rows[0])
    if markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(cell(r[c]) for c in cols) + " |")
    else:
        for r in rows:
            print(", ".join(f"{c}={r[c]}" for c in cols))
