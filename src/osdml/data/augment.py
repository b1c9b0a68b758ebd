"""Augmentation of the training part's seizure events (never validation or test events).

Steps, in order (each optional, ``AugmentConfig``):

1. per-user balancing: seizure events of users with fewer of them are copied until every user
   has as many as the user with the most;
2. Gaussian noise: ``noise_copies`` copies of every seizure event (originals and step-1 copies)
   with noise of ``noise_sigma_mg``; where the segment has 3-D data the noise is added to each
   axis and the magnitude recomputed, otherwise it is added to the magnitude;
3. phase shift: copies starting ``k * phase_step_samples`` samples later (every multiple below
   the hop), so their windows fall between the originals';
4. random oversampling: seizure events (originals and step-1 copies) repeated at random until
   seizure windows reach ``target_ratio`` x non-seizure windows;
5. random undersampling: non-seizure events dropped at random until non-seizure windows are at
   most seizure windows / ``target_ratio``.

Originals are never modified. Every copy is a new event with a unique id (``407~n3`` is noise
copy 3 of event 407; ``~u``, ``~p``, ``~o`` mark user-balance, phase and oversampling copies)
that records its source event and what was done to it. Every step keeps the source's time
axis (noise sample for sample, a phase shift by whole samples: ``Augmented.source_starts``), so
the seizure-time labels of ``osdml.data.labels`` apply to copies as to their source; a future
step that stretches or reorders time must mark its segments -1 there, and its copies then keep
the whole-event label.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from osdml.config import AugmentConfig
from osdml.data.filters import Selection
from osdml.data.streams import EventInfo, EventStreams
from osdml.data.windows import window_count

SEIZURE = 1


@dataclass
class _Copy:
    info: EventInfo
    segments: list[tuple[np.ndarray, np.ndarray | None]]  # (magnitude g float32, xyz mg or None)
    # per segment: the sample of the source streams its first sample was copied from (its time
    # is that sample's time), -1 when an augmentation changed the time axis
    source_starts: list[int] = field(default_factory=list)

    def n_windows(self, window: int, hop: int) -> int:
        return sum(window_count(len(m), window, hop) for m, _ in self.segments)


@dataclass
class Augmented:
    """The training events after augmentation.

    Attributes
    ----------
    train : np.ndarray of shape (n,), int64
        Original training events kept (indices into the source streams; fewer than given when
        undersampling dropped some).
    copies : EventStreams
        The new events, in memory; all seizure events (label 1).
    counts : Counter
        Number of copies made by each step, and non-seizure events dropped.
    source_starts : np.ndarray of shape (len(copies.segments),), int64
        For each segment of `copies`: the sample of the source streams its first sample was
        copied from, so that its samples have the source's times (``osdml.data.labels``); -1
        when an augmentation changed the time axis. Every step here keeps it: noise and
        copies sample for sample, a phase shift by a whole number of samples.
    """

    train: np.ndarray
    copies: EventStreams
    counts: Counter
    source_starts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def augment_training(
    streams: EventStreams,
    selection: Selection,
    train: np.ndarray,
    config: AugmentConfig,
    window_samples: int = 750,
    hop_samples: int = 125,
) -> Augmented:
    """Augment the seizure events among `train` (indices into ``streams.events``).

    Parameters
    ----------
    streams : EventStreams
    selection : Selection
        Supplies the labels of `train`.
    train : np.ndarray of int
        The training part of a split. Validation and test events must not be passed.
    config : AugmentConfig
    window_samples, hop_samples : int
        Used to count windows for over/undersampling and to bound the phase shifts.

    Returns
    -------
    Augmented
    """
    cfg = config
    rng = np.random.default_rng(cfg.seed)
    train = np.asarray(train, dtype=np.int64)
    labels = selection.labels_for(train)
    positives = [_original(streams, i) for i in train[labels == SEIZURE]]
    negatives = train[labels != SEIZURE]
    counts: Counter = Counter()

    pool = list(positives)
    if cfg.user_balance:
        pool += _user_balance(positives, rng, counts)
    made = list(pool[len(positives):])
    if cfg.noise_copies and cfg.noise_sigma_mg > 0:
        for src in pool:
            for k in range(cfg.noise_copies):
                made.append(_noisy(src, k, cfg.noise_sigma_mg, rng))
        counts["noise"] = len(pool) * cfg.noise_copies
    if cfg.phase_step_samples:
        for src in pool:
            for shift in range(cfg.phase_step_samples, hop_samples, cfg.phase_step_samples):
                made.append(_shifted(src, shift))
                counts["phase"] += 1

    def windows_of(events) -> int:
        return sum(e.n_windows(window_samples, hop_samples) for e in events)

    neg_windows = int(sum(window_count(int(n), window_samples, hop_samples)
                          for i in negatives for _, n, _ in streams.segment_rows(int(i))))
    pos_windows = windows_of(positives) + windows_of(made)
    if cfg.oversample and pool and windows_of(pool) > 0:
        k = 0
        while pos_windows < cfg.target_ratio * neg_windows:
            src = pool[rng.integers(len(pool))]
            made.append(_relabel(src, f"~o{k}", "oversample"))
            pos_windows += src.n_windows(window_samples, hop_samples)
            k += 1
        counts["oversample"] = k
    if cfg.undersample and neg_windows > pos_windows / cfg.target_ratio:
        negatives = _undersample(streams, negatives, pos_windows / cfg.target_ratio,
                                 window_samples, hop_samples, rng)
        counts["undersample_dropped"] = int(np.sum(labels != SEIZURE) - len(negatives))

    kept = np.sort(np.concatenate([train[labels == SEIZURE], negatives]))
    copies, source_starts = _assemble(made, streams.sample_rate_hz)
    return Augmented(kept, copies, counts, source_starts)


def _original(streams: EventStreams, i: int) -> _Copy:
    segs, starts = [], []
    for s, n, x in streams.segment_rows(int(i)):
        xyz = None if x < 0 else streams.xyz[x:x + n]
        segs.append((streams.samples[s:s + n], xyz))
        starts.append(int(s))
    return _Copy(streams.events[int(i)], segs, starts)


def _relabel(src: _Copy, suffix: str, what: str, segments=None, source_starts=None) -> _Copy:
    """A copy of `src`; `segments` (default: the same arrays) must keep the time axis of
    `src` sample for sample unless `source_starts` (default: those of `src`) says otherwise
    (-1: the samples' times are not known)."""
    info = src.info
    done = what if info.augmentation is None else f"{info.augmentation}+{what}"
    return _Copy(replace(info, id=info.id + suffix, source_event=info.root_id,
                         augmentation=done), src.segments if segments is None else segments,
                 list(src.source_starts if source_starts is None else source_starts))


def _user_balance(positives: list[_Copy], rng, counts: Counter) -> list[_Copy]:
    by_user: dict[str, list[_Copy]] = defaultdict(list)
    for c in positives:
        by_user[c.info.user_id].append(c)
    if not by_user:
        return []
    target = max(len(v) for v in by_user.values())
    out = []
    for user in sorted(by_user):
        events = by_user[user]
        order = rng.permutation(len(events))
        for k in range(target - len(events)):
            out.append(_relabel(events[order[k % len(events)]], f"~u{k}", "user_balance"))
    counts["user_balance"] = len(out)
    return out


def _noisy(src: _Copy, k: int, sigma_mg: float, rng) -> _Copy:
    segs = []
    for mag_g, xyz in src.segments:
        if xyz is not None:
            noisy = xyz.astype(np.float32) + rng.normal(0.0, sigma_mg, xyz.shape).astype(np.float32)
            mag = np.sqrt((noisy * noisy).sum(axis=1)) / np.float32(1000.0)
            xyz_out = np.clip(np.rint(noisy), -32768, 32767).astype(np.int16)
        else:
            noise = rng.normal(0.0, sigma_mg / 1000.0, mag_g.shape).astype(np.float32)
            mag, xyz_out = mag_g + noise, None
        segs.append((mag.astype(np.float32), xyz_out))
    return _relabel(src, f"~n{k}", f"noise({sigma_mg:g} mg)", segs)


def _shifted(src: _Copy, shift: int) -> _Copy:
    segs = [(m[shift:], None if x is None else x[shift:]) for m, x in src.segments]
    starts = [s + shift if s >= 0 else -1 for s in src.source_starts]
    return _relabel(src, f"~p{shift}", f"phase(+{shift})", segs, starts)


def _undersample(streams, negatives, max_windows, window, hop, rng) -> np.ndarray:
    kept, total = [], 0
    for i in rng.permutation(negatives):
        if total >= max_windows:
            break
        kept.append(i)
        total += sum(window_count(int(n), window, hop) for _, n, _ in streams.segment_rows(int(i)))
    return np.array(kept, dtype=np.int64)


def _assemble(copies: list[_Copy], sample_rate_hz: float) -> tuple[EventStreams, np.ndarray]:
    """Pack copies into one in-memory ``EventStreams`` (no per-datapoint metadata); also
    return the source sample of each of its segments (``Augmented.source_starts``)."""
    samples, xyz_parts, segments, infos, source_starts = [], [], [], [], []
    n_samples = n_xyz = 0
    for c in copies:
        seg_start = len(segments)
        known = len(c.source_starts) == len(c.segments)
        source_starts += list(c.source_starts) if known else [-1] * len(c.segments)
        for mag, xyz in c.segments:
            xyz_start = -1
            if xyz is not None:
                xyz_start = n_xyz
                xyz_parts.append(np.asarray(xyz, dtype=np.int16))
                n_xyz += len(xyz)
            samples.append(np.asarray(mag, dtype=np.float32))
            segments.append((n_samples, len(mag), xyz_start))
            n_samples += len(mag)
        infos.append(replace(c.info, seg_start=seg_start, seg_stop=len(segments)))
    streams = EventStreams(
        events=infos,
        samples=np.concatenate(samples) if samples else np.empty(0, np.float32),
        segments=np.array(segments, dtype=np.int64).reshape(-1, 3),
        xyz=np.concatenate(xyz_parts) if xyz_parts else np.empty((0, 3), np.int16),
        dp_time_s=None, dp_hr_bpm=None, dp_alarm_state=None,
        sample_rate_hz=sample_rate_hz,
    )
    return streams, np.array(source_starts, dtype=np.int64)
