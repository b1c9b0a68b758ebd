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


class _NoSplit(Exception):
    """The data cannot be split as configured; ``split_events`` adds advice tried on them."""


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
        If there are too few events, classes or users for the requested folds or fractions,
        or (when the selection holds both classes) no split has seizure and non-seizure events
        in both its training and validation parts. The message gives the numbers and a change
        that was tried on these data and splits them (``use n_folds=3``), or says that none
        does.

    Warns
    -----
    UserWarning
        When some splits (not all) have a training or validation part without seizure (or
        without non-seizure) events: those cannot be trained. ``split_manifest`` records the
        same lines under ``warnings``.
    """
    labels = selection.labels
    if len(labels) < 3:
        raise InputError(f"cannot split {len(labels)} selected events into train, validation "
                         "and test parts; need at least 3")
    groups = _groups(streams, selection, config)
    pos = np.arange(len(labels))
    c = config
    try:
        parts = _attempt(pos, labels, groups, c)
    except _NoSplit as e:
        # a change that makes every split trainable first (osdml run stops at a fold that
        # cannot be trained), else one that makes some
        advice = (_advice(pos, labels, groups, c, every=True, none="")
                  or _advice(pos, labels, groups, c))
        raise InputError(f"{e}; {advice}") from None
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
    splits = [Split(np.sort(idx[tr]), np.sort(idx[va]), np.sort(idx[te]), k, j)
              for tr, va, te, k, j in parts]
    gaps = _gap_lines(labels, [(Split(tr, va, te, k, j).name, tr, va)
                               for tr, va, te, k, j in parts])
    if gaps:
        hint = _advice(pos, labels, groups, c, every=True, none="")
        for line in gaps:
            warnings.warn(line + (f"; {hint}" if hint else ""), stacklevel=2)
    return splits


def _groups(streams: EventStreams, selection: Selection, config: SplitConfig):
    if not config.group_by_user:
        return None
    return np.array([streams.events[i].user_id for i in selection.indices])


def _gaps(labels: np.ndarray, named: list[tuple[str, np.ndarray, np.ndarray]]
          ) -> dict[str, list[str]]:
    """What each split lacks -> the names of those splits (`named`: name, training and
    validation positions into `labels`); empty when the selection itself lacks a class."""
    out: dict[str, list[str]] = {}
    if len(set(labels.tolist())) < 2:
        return out
    for name, tr, va in named:
        for part, where in (("training", tr), ("validation", va)):
            have = set(labels[where].tolist())
            for cls, what in ((1, "seizure"), (0, "non-seizure")):
                if cls not in have:
                    out.setdefault(f"the {part} part holds no {what} events", []).append(name)
    return out


def _gap_lines(labels: np.ndarray, named: list[tuple[str, np.ndarray, np.ndarray]]
               ) -> list[str]:
    """One warning line per kind of gap (see ``_gaps``)."""
    return [f"{', '.join(names)}: {gap}, so "
            f"{'this split' if len(names) == 1 else f'these {len(names)} splits'} cannot be "
            "trained (training and checkpoint choice need both classes)"
            for gap, names in _gaps(labels, named).items()]


def _attempt(pos, labels, groups, c: SplitConfig, every: bool = False) -> list[tuple]:
    """The (train, val, test, fold, inner) position arrays of `c`'s splits.

    Raises ``_NoSplit`` when they cannot be made, or when no split (with `every`: some split)
    has both classes in its training and validation parts although the data have both."""
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
    named = [(Split(tr, va, te, k, j).name, tr, va) for tr, va, te, k, j in parts]
    gaps = _gaps(labels, named)
    lacking = {n for names in gaps.values() for n in names}
    if lacking and (every or len(lacking) == len(parts)):
        gap, names = next(iter(gaps.items()))
        what = f"{names[0]}: {gap}" if len(parts) > 1 else gap
        others = len(lacking) - 1
        n = int((labels == 1).sum())
        raise _NoSplit("no split can be trained: " + what
                       + (f" ({others} other split{'s lack' if others > 1 else ' lacks'} a "
                          "class too)" if others else "")
                       + f"; the data hold {n} seizure event{'' if n == 1 else 's'}")
    return parts


def _works(pos, labels, groups, c: SplitConfig, every: bool) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _attempt(pos, labels, groups, c, every)
        except _NoSplit:
            return False
    return True


def _advice(pos, labels, groups, c: SplitConfig, every: bool = False,
            none: str | None = None) -> str:
    """What to change, each change tried on these data first: the nearest number of folds
    (fewer preferred) that splits them, the nearest val_fraction, turning off group_by_user
    (alone, or with a number of folds). With `every`, a change must give every split both
    classes in training and validation. `none` is said when nothing works (default: what was
    tried, and add events or users)."""
    def nearest(key, tries, grp):
        return next((v for v in tries if _works(pos, labels, grp, c.model_copy(update={key: v}),
                                               every)), None)

    def fold_tries(key, grp):
        now = getattr(c, key)
        top = len(set(grp[pos].tolist())) if grp is not None else len(pos)
        return [*range(now - 1, 1, -1), *range(now + 1, top + 1)][:32]

    fold_keys = {"holdout": (), "kfold": ("n_folds",),
                 "nested": ("n_folds", "n_inner_folds")}[c.method]
    steps = sorted({round(c.val_fraction + d * 0.05, 2) for d in range(-6, 7) if d},
                   key=lambda v: abs(v - c.val_fraction))
    tries = {key: fold_tries for key in fold_keys}
    if c.method != "nested":
        tries["val_fraction"] = lambda key, grp: [v for v in steps if 0.05 <= v <= 0.6]
    fixes = []
    for key, values in tries.items():
        v = nearest(key, values(key, groups), groups)
        if v is not None:
            fixes.append(f"use {key}={v:g}")
    if groups is not None:
        if _works(pos, labels, None, c, every):
            fixes.append("turn off group_by_user")
        else:
            for key, values in tries.items():
                v = nearest(key, values(key, None), None)
                if v is not None:
                    fixes.append(f"turn off group_by_user with {key}={v:g}")
                    break
    if fixes:
        tried = ("then every split has both classes in training and validation" if every
                 else f"{'each' if len(fixes) > 1 else 'it'} splits these data")
        if not every and none is None and fold_keys:
            # the caller tried every=True first: no change above trains every split
            tried = "then some splits can be trained, not all"
        return f"{' or '.join(fixes)} (tried: {tried})"
    if none is not None:
        return none
    grouped = groups is not None
    what = [w for w, on in (("other numbers of folds", bool(fold_keys)),
                            ("other values of val_fraction", c.method != "nested"),
                            ("turning off group_by_user", grouped)) if on]
    return (f"tried {', '.join(what)}: none splits these data; add events"
            f"{' or users' * grouped}")


def _kfold(pos, labels, groups, n_folds, seed, param):
    """Yield (rest, fold) position arrays for each of `n_folds` stratified (grouped) folds."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = labels[pos]
    if groups is not None:
        n_users = len(set(groups[pos]))
        if n_folds > n_users:
            raise _NoSplit(f"{param}={n_folds} needs {n_folds} users for grouped splitting but "
                           f"only {n_users} {'is' if n_users == 1 else 'are'} available")
        splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
        folds = splitter.split(pos, y, groups[pos])
    else:
        counts = np.bincount(y)
        counts = counts[counts > 0]
        if n_folds > len(pos) or n_folds > counts.max():
            raise _NoSplit(f"{param}={n_folds} exceeds the {len(pos)} events available "
                           f"(largest class: {counts.max()})")
        if n_folds > counts.min():
            warnings.warn(f"the smallest class has only {counts.min()} events, fewer than "
                          f"{param}={n_folds}: some folds will have none of it",
                          stacklevel=4)
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(pos, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        return [(pos[rest], pos[fold]) for rest, fold in folds]


def _two_way(pos, labels, groups, fraction, seed, param):
    """Split positions `pos` into (rest, part) with about `fraction` of events in `part`."""
    from sklearn.model_selection import train_test_split

    if groups is not None:
        n_folds = max(2, round(1 / fraction))
        n_users = len(set(groups[pos]))
        if n_users < 2:
            raise _NoSplit(f"{param}: cannot split {n_users} user into two parts grouped by "
                           "user")
        rest, part = _kfold(pos, labels, groups, min(n_folds, n_users), seed, param)[0]
        return rest, part
    y = labels[pos]
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_part = max(1, round(fraction * len(pos)))
    if n_part >= len(pos):
        raise _NoSplit(f"{param}={fraction:g} of {len(pos)} events leaves nothing on the "
                       "other side")
    try:
        rest, part = train_test_split(pos, test_size=n_part, stratify=stratify, random_state=seed)
    except ValueError:
        # Fewer part slots than classes: stratification impossible, split at random.
        rest, part = train_test_split(pos, test_size=n_part, random_state=seed)
    return rest, part


# --------------------------------------------------------------------------- manifests

def split_manifest(streams: EventStreams, selection: Selection, splits: list[Split],
                   config: SplitConfig) -> dict[str, Any]:
    """The audit record of `splits`: event ids per part, with label and user counts, and
    ``warnings``: one line per kind of split that cannot be trained (a training or validation
    part without seizure, or without non-seizure, events), as ``split_events`` warned."""
    label_of = dict(zip(selection.indices.tolist(), selection.labels.tolist(), strict=True))

    def part(idx: np.ndarray) -> dict[str, Any]:
        labels = [label_of[int(i)] for i in idx]
        return {
            "events": [streams.events[i].id for i in idx],
            "n_events": len(idx),
            "by_label": {str(k): labels.count(k) for k in sorted(set(labels))},
            "users": sorted({streams.events[i].user_id for i in idx}),
        }

    pos_of = {int(i): k for k, i in enumerate(selection.indices.tolist())}

    def at(idx: np.ndarray) -> np.ndarray:
        return np.array([pos_of[int(i)] for i in idx], dtype=np.int64)

    return {
        "format": MANIFEST_FORMAT,
        "config": config.model_dump(mode="json"),
        "n_events": len(selection),
        "splits": [{"name": s.name, "fold": s.fold, "inner": s.inner, "train": part(s.train),
                    "val": part(s.val), "test": part(s.test)} for s in splits],
        # splits that cannot be trained (a training or validation part lacking a class)
        "warnings": _gap_lines(selection.labels, [(s.name, at(s.train), at(s.val))
                                                  for s in splits]),
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
