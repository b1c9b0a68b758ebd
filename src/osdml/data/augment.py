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
that records its source event and what was done to it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace

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
    """

    train: np.ndarray
    copies: EventStreams
    counts: Counter


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
    return Augmented(kept, _assemble(made, streams.sample_rate_hz), counts)


def _original(streams: EventStreams, i: int) -> _Copy:
    segs = []
    for s, n, x in streams.segment_rows(int(i)):
        xyz = None if x < 0 else streams.xyz[x:x + n]
        segs.append((streams.samples[s:s + n], xyz))
    return _Copy(streams.events[int(i)], segs)


def _relabel(src: _Copy, suffix: str, what: str, segments=None) -> _Copy:
    info = src.info
    done = what if info.augmentation is None else f"{info.augmentation}+{what}"
    return _Copy(replace(info, id=info.id + suffix, source_event=info.root_id,
                         augmentation=done), src.segments if segments is None else segments)


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
    return _relabel(src, f"~p{shift}", f"phase(+{shift})", segs)


def _undersample(streams, negatives, max_windows, window, hop, rng) -> np.ndarray:
    kept, total = [], 0
    for i in rng.permutation(negatives):
        if total >= max_windows:
            break
        kept.append(i)
        total += sum(window_count(int(n), window, hop) for _, n, _ in streams.segment_rows(int(i)))
    return np.array(kept, dtype=np.int64)


def _assemble(copies: list[_Copy], sample_rate_hz: float) -> EventStreams:
    """Pack copies into one in-memory ``EventStreams`` (no per-datapoint metadata)."""
    samples, xyz_parts, segments, infos = [], [], [], []
    n_samples = n_xyz = 0
    for c in copies:
        seg_start = len(segments)
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
    return EventStreams(
        events=infos,
        samples=np.concatenate(samples) if samples else np.empty(0, np.float32),
        segments=np.array(segments, dtype=np.int64).reshape(-1, 3),
        xyz=np.concatenate(xyz_parts) if xyz_parts else np.empty((0, 3), np.int16),
        dp_time_s=None, dp_hr_bpm=None, dp_alarm_state=None,
        sample_rate_hz=sample_rate_hz,
    )
