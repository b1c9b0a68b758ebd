"""Train / validation / test splits of events, and their manifests.

Splits are by event (all windows of an event on one side), stratified on the label, optionally
grouped by user (no user on two sides), and deterministic for a seed. The validation part is
what training uses to choose checkpoints; the test part is never seen in training. Three
methods:

- ``holdout``: one split: test_fraction of the events, then val_fraction of the rest;
- ``kfold``: k folds, each the test part once; validation carved from the other k-1 folds;
- ``nested``: k outer folds for test; inside each outer training part, inner folds each serve
  once as validation.

scikit-learn does the partitioning (``StratifiedKFold``, ``StratifiedGroupKFold``,
``train_test_split``). Every split is written as a manifest (event ids per part) so it can be
reproduced and audited.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from osdml.config import SplitConfig
from osdml.data.filters import Selection
from osdml.data.streams import EventStreams
from osdml.errors import InputError
from osdml.fileio import write_json

MANIFEST_FORMAT = 1


@dataclass
class Split:
    """One train / validation / test division of events.

    ``train``, ``val`` and ``test`` are int64 arrays of indices into ``streams.events``,
    sorted. ``fold`` is the (outer) test fold and ``inner`` the inner fold of a nested split;
    ``tag`` names a split that is not a fold (an ensemble member: ``member03``).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    fold: int = 0
    inner: int | None = None
    tag: str | None = None

    @property
    def name(self) -> str:
        if self.tag:
            return self.tag
        return f"fold{self.fold}" if self.inner is None else f"fold{self.fold}.{self.inner}"


def split_events(streams: EventStreams, selection: Selection, config: SplitConfig) -> list[Split]:
    """Split the selected events by `config`.

    Parameters
    ----------
    streams : EventStreams
        Supplies user ids for grouping.
    selection : Selection
        The events to split and their labels.
    config : SplitConfig
        Method, folds, fractions, grouping and seed.

    Returns
    -------
    list of Split
        One for holdout, ``n_folds`` for kfold, ``n_folds * n_inner_folds`` for nested
        (ordered by outer then inner fold).

    Raises
    ------
    InputError
        If there are too few events, classes or users for the requested folds or fractions;
        the message gives the numbers and what to change.
    """
    labels = selection.labels
    if len(labels) < 3:
        raise InputError(f"cannot split {len(labels)} selected events into train, validation "
                         "and test parts; need at least 3")
    groups = None
    if config.group_by_user:
        groups = np.array([streams.events[i].user_id for i in selection.indices])
    pos = np.arange(len(labels))
    c = config
    if c.method == "holdout":
        rest, test = _two_way(pos, labels, groups, c.test_fraction, c.seed, "test_fraction")
        train, val = _two_way(rest, labels, groups, c.val_fraction, c.seed + 1, "val_fraction")
        parts = [(train, val, test, 0, None)]
    else:
        parts = []
        for k, (rest, test) in enumerate(_kfold(pos, labels, groups, c.n_folds, c.seed,
                                                "n_folds")):
            if c.method == "kfold":
                train, val = _two_way(rest, labels, groups, c.val_fraction, c.seed + 1 + k,
                                      "val_fraction")
                parts.append((train, val, test, k, None))
            else:
                inner = _kfold(rest, labels, groups, c.n_inner_folds, c.seed + 1 + k,
                               "n_inner_folds")
                parts.extend((tr, va, test, k, j) for j, (tr, va) in enumerate(inner))
    if len(set(labels.tolist())) < 2:
        warnings.warn(f"all {len(labels)} selected events have label {labels[0]}: sensitivity "
                      "or false-positive rate cannot be measured on these splits", stacklevel=2)
    if c.method == "holdout" and groups is not None:
        tr, va, te, _, _ = parts[0]
        for name, part, asked in (("test", te, c.test_fraction),
                                  ("validation", va, c.val_fraction * (1 - c.test_fraction))):
            share = len(part) / len(pos)
            if not asked / 2 <= share <= asked * 2:
                warnings.warn(f"grouped by user, the {name} part holds {share:.0%} of the events "
                              f"(configured about {asked:.0%}): whole users move between parts",
                              stacklevel=2)
    idx = selection.indices
    return [Split(np.sort(idx[tr]), np.sort(idx[va]), np.sort(idx[te]), k, j)
            for tr, va, te, k, j in parts]


def _kfold(pos, labels, groups, n_folds, seed, param):
    """Yield (rest, fold) position arrays for each of `n_folds` stratified (grouped) folds."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = labels[pos]
    if groups is not None:
        n_users = len(set(groups[pos]))
        if n_folds > n_users:
            fewer = (f"use {n_users} folds or fewer" if n_users >= 2 else
                     "add users (2 folds need 2)")
            raise InputError(f"{param}={n_folds} needs {n_folds} users for grouped splitting "
                             f"but only {n_users} {'is' if n_users == 1 else 'are'} available; "
                             f"{fewer}, or turn off group_by_user")
        splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
        folds = splitter.split(pos, y, groups[pos])
    else:
        counts = np.bincount(y)
        counts = counts[counts > 0]
        if n_folds > len(pos) or n_folds > counts.max():
            raise InputError(f"{param}={n_folds} exceeds the {len(pos)} events available "
                             f"(largest class: {counts.max()}); use fewer folds")
        if n_folds > counts.min():
            warnings.warn(f"the smallest class has only {counts.min()} events, fewer than "
                          f"{param}={n_folds}: some folds will have none of it",
                          stacklevel=3)
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(pos, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for rest, fold in folds:
            yield pos[rest], pos[fold]


def _two_way(pos, labels, groups, fraction, seed, param):
    """Split positions `pos` into (rest, part) with about `fraction` of events in `part`."""
    from sklearn.model_selection import train_test_split

    if groups is not None:
        n_folds = max(2, round(1 / fraction))
        n_users = len(set(groups[pos]))
        if n_users < 2:
            raise InputError(f"{param}: cannot split {n_users} user into two parts grouped by "
                             "user; add users or turn off group_by_user")
        rest, part = next(_kfold(pos, labels, groups, min(n_folds, n_users), seed, param))
        return rest, part
    y = labels[pos]
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_part = max(1, round(fraction * len(pos)))
    if n_part >= len(pos):
        raise InputError(f"{param}={fraction:g} of {len(pos)} events leaves nothing on the "
                         "other side; need more events")
    try:
        rest, part = train_test_split(pos, test_size=n_part, stratify=stratify, random_state=seed)
    except ValueError:
        # Fewer part slots than classes: stratification impossible, split at random.
        rest, part = train_test_split(pos, test_size=n_part, random_state=seed)
    return rest, part


# --------------------------------------------------------------------------- manifests

def split_manifest(streams: EventStreams, selection: Selection, splits: list[Split],
                   config: SplitConfig) -> dict[str, Any]:
    """The audit record of `splits`: event ids per part, with label and user counts."""
    label_of = dict(zip(selection.indices.tolist(), selection.labels.tolist(), strict=True))

    def part(idx: np.ndarray) -> dict[str, Any]:
        labels = [label_of[int(i)] for i in idx]
        return {
            "events": [streams.events[i].id for i in idx],
            "n_events": len(idx),
            "by_label": {str(k): labels.count(k) for k in sorted(set(labels))},
            "users": sorted({streams.events[i].user_id for i in idx}),
        }

    return {
        "format": MANIFEST_FORMAT,
        "config": config.model_dump(mode="json"),
        "n_events": len(selection),
        "splits": [{"name": s.name, "fold": s.fold, "inner": s.inner, "train": part(s.train),
                    "val": part(s.val), "test": part(s.test)} for s in splits],
    }


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> Path:
    """Write a split manifest atomically."""
    return write_json(path, manifest)


def read_manifest(path: str | Path, streams: EventStreams) -> list[Split]:
    """Rebuild the splits recorded in a manifest against `streams`.

    Raises
    ------
    InputError
        If the file is unreadable or names an event that `streams` does not hold.
    """
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
        records = manifest["splits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read split manifest {path}: {e}") from None
    index = streams.index_of()
    out = []
    for r in records:
        parts = []
        for name in ("train", "val", "test"):
            ids = r[name]["events"]
            missing = [i for i in ids if i not in index]
            if missing:
                raise InputError(f"split manifest {path}: {r['name']} {name} names "
                                 f"{len(missing)} events not in the data (first: {missing[0]})")
            parts.append(np.sort(np.array([index[i] for i in ids], dtype=np.int64)))
        split = Split(*parts, fold=r["fold"], inner=r["inner"])
        if r.get("name") and r["name"] != split.name:
            split.tag = str(r["name"])
        out.append(split)
    return out
