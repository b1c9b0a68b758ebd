"""``osdml publish``: add a .pte to the app's models index, or check an index as the app reads
it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from osdml.cli.common import (
    JsonOpt,
    app,
    get_console,
    plural,
    print_json,
    quiet_libraries,
    require_executorch_for,
)
from osdml.errors import CheckFailed, InputError


@app.command()
def publish(
    model: Annotated[Path | None, typer.Argument(
        help="The .pte to publish (omit with --check).", show_default=False)] = None,
    index: Annotated[Path | None, typer.Option(
        "--index", help="The app's models index (index.json) to add the entry to; created if "
        "missing. The .pte is copied beside it.")] = None,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Check this index as the app reads it instead of publishing.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Name shown in the app (default: the file's stem).")] = None,
    fname: Annotated[str | None, typer.Option(
        help="File name on the model server, the app's key for an installed model (default: "
        "the file's own name); the .pte is copied beside the index under it.")] = None,
    version: Annotated[str | None, typer.Option(
        help="Version shown in the app (default: the date the model was made).")] = None,
    description: Annotated[str | None, typer.Option(
        help="Description shown in the app (default: built from the model's spec).")] = None,
    recommended: Annotated[bool, typer.Option(
        "--recommended", help="Mark the entry recommended (the app offers it as an update).")
                           ] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace the entry with this name or fname, and the file.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Publish a .pte in the app's models index, or check an index (--check).

    Publishing writes the entry the app needs (input_size read from the program, thresholds
    in percent from the tuned app settings, size, sha256), copies the file beside the index,
    and writes the index last; both atomically. It refuses a file that is not an osdml .pte,
    whose recorded validation failed or that does not output two logits, and a name or fname
    already used (unless --replace). --check lists, entry by entry, what the app would drop,
    misread or run with p = 0 forever; exit 1 when it finds any."""
    if check is not None:
        given = [opt for opt, value in (("MODEL", model), ("--index", index), ("--name", name),
                                        ("--fname", fname),
                                        ("--version", version), ("--description", description),
                                        ("--recommended", recommended), ("--replace", replace))
                 if value]
        if given:
            raise InputError(f"--check reads an index and publishes nothing; drop "
                             f"{', '.join(given)}")
        _check(check, json_out)
        return
    if model is None:
        raise InputError("give the .pte to publish and --index INDEX.json, or --check "
                         "INDEX.json")
    if index is None:
        raise InputError(f"--index is missing: give the index.json to publish {model} into")
    from osdml.app.index import publish as publish_model
    from osdml.app.index import require_pte

    require_pte(model)  # what the file is instead, in one line, before ExecuTorch is imported
    require_executorch_for()
    with quiet_libraries():
        result = publish_model(model, index, name=name, version=version,
                               description=description, recommended=recommended,
                               replace=replace, fname=fname)
    if json_out:
        print_json(result.to_dict())
    else:  # plain lines: a long description stays on one line
        how = f"replaced entry {result.position}" if result.replaced \
            else f"added as entry {result.position}"
        sys.stdout.write(f"{model} -> {result.index} ({how})\n"
                         f"  file: {result.file} ({'copied' if result.copied else 'already there'})"
                         "\n" + "".join(f"  {key}: {json.dumps(value)}\n"
                                        for key, value in result.entry.items()))
    for warning in result.warnings:
        sys.stderr.write(f"osdml: warning: {warning}\n")


def _check(index: Path, json_out: bool) -> None:
    from osdml.app.index import FAILING, check_index, read_index

    with quiet_libraries():
        findings = check_index(index)
    entries = len(read_index(index, strict=False))
    failing = [f for f in findings if f.severity in FAILING]
    if json_out:
        print_json({"index": str(index), "entries": entries,
                    "findings": [f.to_dict() for f in findings]})
    elif findings:
        notes = len(findings) - len(failing)
        get_console().print(_findings_table(
            f"{index}: {_entries(entries)}, {plural(len(failing), 'finding')}"
            + (f" and {plural(notes, 'note')} (not checked here)" if notes else ""), findings))
    else:
        get_console().print(f"{index}: {_entries(entries)}, no findings: the app reads every "
                            "entry as written")
    if failing:
        counts = {}
        for f in failing:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        raise CheckFailed(f"{index}: {plural(len(failing), 'finding')} ("
                          + ", ".join(f"{n} {s}" for s, n in counts.items())
                          + (")" if json_out else "); the table lists them"))


def _entries(n: int) -> str:
    return f"{n:,} {'entry' if n == 1 else 'entries'}"


def _findings_table(title: str, findings):
    """Entry, name, severity and the finding, left-aligned (the findings are sentences)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold")
    t.add_column("#", justify="right", no_wrap=True)
    for column in ("name", "severity"):
        t.add_column(column, no_wrap=True)
    t.add_column("finding")
    for f in findings:
        t.add_row(str(f.entry), "-" if f.name is None else f.name, f.severity, f.message)
    return t
