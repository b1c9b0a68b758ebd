"""Augmentation of the training part's events (never validation or test events).

Steps, in order (each optional, ``AugmentConfig``), after nnTraining2's ``augmentData.py``
(user augmentation first, then the per-event copies, then over/undersampling):

1. per-user balancing: seizure events of users with fewer of them are copied until every user
   has as many as the user with the most; with ``user_balance_threshold`` users with fewer
   seizure events than it are first pooled into one pseudo-user (upstream's ``'other'``);
2. sample rate: each seizure event (originals and step-1 copies) resampled in time by each of
   ``sample_rate_factors`` (``_resampled``);
3. Gaussian noise: ``noise_copies`` copies of every seizure event (originals, step-1 and step-2
   copies) with noise of ``noise_sigma_mg``; where the segment has 3-D data the noise is added
   to each axis and the magnitude recomputed, otherwise it is added to the magnitude;
4. phase shift: copies of the originals and step-1 copies starting ``k * phase_step_samples``
   samples later (every multiple below the hop), so their windows fall between the
   originals'; resampled copies are not shifted (their sample grid already differs);
5. non-seizure noise: ``negative_noise`` rules give noise copies of the training part's
   class-0 events of chosen subtypes (these copies are labelled 0);
6. random oversampling: seizure events (originals, step-1 and step-2 copies) repeated at random
   until seizure windows reach ``target_ratio`` x non-seizure windows (step-5 copies counted);
7. random undersampling: original non-seizure events dropped at random until non-seizure
   windows (step-5 copies counted, never dropped) are at most seizure windows /
   ``target_ratio``.

Originals are never modified. Every copy is a new event with a unique id (``407~n3`` is noise
copy 3 of event 407; ``~u``, ``~p``, ``~o`` mark user-balance, phase and oversampling copies,
``~r1.1`` the copy resampled by 1.1, ``~nn2`` non-seizure noise copy 2) that records its source
event and what was done to it. Every step but resampling keeps the source's time axis (noise
sample for sample, a phase shift by whole samples: ``Augmented.source_starts``), so the
seizure-time labels of ``osdml.data.labels`` apply to copies as to their source; a resampled
copy's time axis is its source's scaled by the factor about the event's ``dataTime``, and so
are its ``seizureTimes`` (``Augmented.source_scales``). A future step that reorders time must
mark its segments -1 there, and its copies then keep the whole-event label.
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
    # the source's time axis stretched by this (a resampled copy's factor; 1: kept)
    time_scale: float = 1.0

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
        The new events, in memory: seizure events, then the non-seizure noise copies.
    counts : Counter
        Number of copies made by each step (``user_balance``, ``sample_rate``, ``noise``,
        ``phase``, ``negative_noise``, ``oversample``), users pooled by
        ``user_balance_threshold`` (``user_balance_pooled_users``) and non-seizure events
        dropped (``undersample_dropped``).
    source_starts : np.ndarray of shape (len(copies.segments),), int64
        For each segment of `copies`: the sample of the source streams its first sample was
        copied from, so that its samples have the source's times (``osdml.data.labels``); -1
        when an augmentation changed the time axis. Noise and copies keep it sample for
        sample, a phase shift by a whole number of samples; a resampled segment's first sample
        is its source segment's first.
    labels : np.ndarray of shape (copies.n_events,), int64
        The class of each copy: 1 (seizure) or 0 (the non-seizure noise copies).
    source_scales : np.ndarray of shape (len(copies.segments),), float64
        For each segment of `copies`: 1, or the factor by which resampling stretched its
        source's time axis (``_resampled``; ``osdml.data.labels`` scales its times by it).
    """

    train: np.ndarray
    copies: EventStreams
    counts: Counter
    source_starts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    source_scales: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))


def augment_training(
    streams: EventStreams,
    selection: Selection,
    train: np.ndarray,
    config: AugmentConfig,
    window_samples: int = 750,
    hop_samples: int = 125,
) -> Augmented:
    """Augment the training events `train` (indices into ``streams.events``): its seizure
    events, and the non-seizure events that ``config.negative_noise`` chooses.

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
        pool += _user_balance(positives, rng, counts, cfg.user_balance_threshold)
    made = list(pool[len(positives):])
    timed_pool = list(pool)  # phase shifts: originals and balance copies only
    if cfg.sample_rate_factors:
        resampled = [_resampled(src, f) for src in timed_pool for f in cfg.sample_rate_factors]
        made += resampled
        pool += resampled
        counts["sample_rate"] = len(resampled)
    if cfg.noise_copies and cfg.noise_sigma_mg > 0:
        for src in pool:
            for k in range(cfg.noise_copies):
                made.append(_noisy(src, k, cfg.noise_sigma_mg, rng))
        counts["noise"] = len(pool) * cfg.noise_copies
    if cfg.phase_step_samples:
        for src in timed_pool:
            for shift in range(cfg.phase_step_samples, hop_samples, cfg.phase_step_samples):
                made.append(_shifted(src, shift))
                counts["phase"] += 1

    def windows_of(events) -> int:
        return sum(e.n_windows(window_samples, hop_samples) for e in events)

    made_neg = _negative_noise(streams, train[labels == 0], cfg, rng, counts)
    neg_copy_windows = windows_of(made_neg)
    neg_windows = neg_copy_windows + int(sum(
        window_count(int(n), window_samples, hop_samples)
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
        negatives = _undersample(streams, negatives,
                                 pos_windows / cfg.target_ratio - neg_copy_windows,
                                 window_samples, hop_samples, rng)
        counts["undersample_dropped"] = int(np.sum(labels != SEIZURE) - len(negatives))

    kept = np.sort(np.concatenate([train[labels == SEIZURE], negatives]))
    every = made + made_neg
    copies, source_starts = _assemble(every, streams.sample_rate_hz)
    copy_labels = np.array([SEIZURE] * len(made) + [0] * len(made_neg), dtype=np.int64)
    scales = np.array([c.time_scale for c in every for _ in c.segments], dtype=np.float64)
    return Augmented(kept, copies, counts, source_starts, copy_labels, scales)


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
                 list(src.source_starts if source_starts is None else source_starts),
                 src.time_scale)


def _user_balance(positives: list[_Copy], rng, counts: Counter, threshold: int = 0
                  ) -> list[_Copy]:
    """Copies that give every user (users with fewer than `threshold` seizure events pooled
    into one pseudo-user first, as upstream ``userAug`` merges them into ``'other'``) as many
    seizure events as the user with the most. Copies keep their own user id."""
    by_user: dict[str, list[_Copy]] = defaultdict(list)
    for c in positives:
        by_user[c.info.user_id].append(c)
    rare = sorted(u for u, v in by_user.items() if len(v) < threshold)
    if rare:
        pooled = [c for u in rare for c in by_user.pop(u)]
        by_user["\0pooled"] = pooled  # no user id starts with NUL
        counts["user_balance_pooled_users"] = len(rare)
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


def _noisy(src: _Copy, k: int, sigma_mg: float, rng, suffix: str = "~n") -> _Copy:
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
    return _relabel(src, f"{suffix}{k}", f"noise({sigma_mg:g} mg)", segs)


def _resample_time(a: np.ndarray, m: int) -> np.ndarray:
    """`a` of shape (n,) or (n, k) resampled to `m` samples along axis 0 by linear
    interpolation, first and last samples kept (upstream ``sampleRateAug``'s
    ``np.interp(linspace(0, 1, m), linspace(0, 1, n), a)``); float64."""
    a = np.asarray(a, dtype=np.float64)
    if not len(a):
        return a[:0].copy()
    x, xp = np.linspace(0.0, 1.0, m), np.linspace(0.0, 1.0, len(a))
    if a.ndim == 1:
        return np.interp(x, xp, a)
    return np.stack([np.interp(x, xp, a[:, j]) for j in range(a.shape[1])], axis=1)


def _resampled(src: _Copy, factor: float) -> _Copy:
    """`src` resampled in time by `factor`, segment by segment (no window spans a split).

    A segment of n samples becomes ``round(n * factor)`` samples spanning the same first and
    last samples (linear interpolation, ``_resample_time``): 1.1 gives 10 % more samples, as if
    the watch had sampled at 1.1 x the rate, so at the nominal rate the movement is 1.1 x
    slower (its frequencies / 1.1); 0.9 gives 10 % fewer, the movement faster. This is
    nnTraining2's ``sampleRateAugmentationFactors`` ("<1 compress, >1 stretch sample
    density"; its test: 250 samples x 0.5 -> 125, x 1.5 -> 375, content
    ``np.interp`` of the source). Where the segment has 3-D data x, y, z (mg) are resampled and
    the magnitude recomputed (as upstream), else the magnitude (g). The copy's
    ``seizureTimes`` are its source's x `factor`: its time axis is its source's stretched by
    `factor` about ``dataTime`` (``Augmented.source_scales``).
    """
    segs = []
    for mag_g, xyz in src.segments:
        m = max(1, int(round(len(mag_g) * factor)))
        if xyz is not None:
            res = _resample_time(xyz, m)
            mag = np.sqrt((res * res).sum(axis=1)) / 1000.0
            xyz_out = np.clip(np.rint(res), -32768, 32767).astype(np.int16)
        else:
            mag, xyz_out = _resample_time(mag_g, m), None
        segs.append((mag.astype(np.float32), xyz_out))
    out = _relabel(src, f"~r{factor:g}", f"sample_rate(x{factor:g})", segs)
    st = src.info.seizure_times
    if st is not None:
        out.info = replace(out.info, seizure_times=(st[0] * factor, st[1] * factor))
    out.time_scale = src.time_scale * factor
    return out


def _negative_noise(streams: EventStreams, negatives: np.ndarray, cfg: AugmentConfig, rng,
                    counts: Counter) -> list[_Copy]:
    """Noise copies (``_noisy``) of the class-0 events `negatives` whose subtype matches a
    ``cfg.negative_noise`` rule (case-insensitive, surrounding spaces ignored), as upstream
    ``noiseAugNonSeizure``: a rule's ``copies`` / ``sigma_mg``, else
    ``negative_noise_copies`` / ``negative_noise_sigma_mg``; 0 copies = none, sigma 0 = plain
    copies."""
    rules = {r.subtype.strip().casefold(): r for r in cfg.negative_noise}
    out: list[_Copy] = []
    if not rules:
        return out
    for i in negatives:
        rule = rules.get((streams.events[int(i)].subtype or "").strip().casefold())
        if rule is None:
            continue
        n = cfg.negative_noise_copies if rule.copies is None else rule.copies
        sigma = cfg.negative_noise_sigma_mg if rule.sigma_mg is None else rule.sigma_mg
        src = _original(streams, int(i))
        out += [_noisy(src, k, sigma, rng, suffix="~nn") for k in range(n)]
    counts["negative_noise"] = len(out)
    return out


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
