"""Deterministic synthetic OSDB generator: osdml's embedded demo dataset.

Writes OSDB-format JSON with the fields, types and units of real releases: int event ids and
user ids, ISO ``dataTime``, ``type``/``subType``, ``dataSourceName``, ``seizureTimes``
relative to the event time, and per 5 s datapoint 125 magnitude samples in milli-g
(``rawData``: floats for Garmin watches, ints otherwise), 375 interleaved x, y, z ints
(``rawData3D``), ``hr`` (-1 when the watch has none), ``o2Sat`` and the OpenSeizureDetector
algorithm's ``alarmState``. Signals come from ``osdml.data.motion``; every user has their own
watch, wrist orientation, movement amplitude and rhythms.

Events, one file per kind as in OSDB releases:

- ``Seizure``: tonic-clonic (75%: tonic, clonic, post-ictal) or clonic-only ("Other"),
  starting from sleep, rest or walking;
- ``False Alarm``: a look-alike activity (the user's habits decide which) between normal ones;
- ``NDA``: 1-3 normal activities, sometimes with a look-alike that did not alarm.

The same seed gives byte-identical files. ``defect_rate`` > 0 damages datapoints the way real
files are damaged (missing or short rawData, NaN and null samples, data in m/s^2, duplicates,
swapped order, time gaps) and records how many of each in the info file.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from osdml.app.engine import STATE_NAMES
from osdml.app.osd import DEFAULT_SETTINGS as OSD
from osdml.data import motion
from osdml.data.motion import FS, UserProfile
from osdml.fileio import atomic_write, write_json

SPD = 125  # samples per datapoint (5 s at 25 Hz)
INFO_NAME = ".osdml-synth.json"
KINDS = {"Seizure": "allSeizures", "False Alarm": "falseAlarms", "NDA": "ndaEvents"}
LOOKALIKE_NAMES = {"teeth brushing": "Brushing Teeth", "hand washing": "Washing Hands",
                   "typing": "Typing", "car": "Car Journey", "exercise": "Exercise",
                   "clapping": "Clapping", "shaking": "Shaking", "scratching": "Scratching",
                   "rocking": "Rocking"}
SEIZURE_SUBTYPES = {"tonic-clonic": "Tonic-Clonic", "clonic": "Other", "tonic": "Tonic",
                    "focal motor": "Other", "subtle": "Aura"}
# Simplified OpenSeizureDetector algorithm: band power 3-8 Hz of the 5 s magnitude.
DEFECTS = ("no_rawData", "wrong_length", "nan_or_null", "implausible_magnitude",
           "duplicate_time", "logging_copy", "out_of_order", "gap_split")


@dataclass
class SynthSpec:
    """What to generate. Counts are per user; the total is ``users x (sum of the counts)``."""

    users: int = 8
    seizures_per_user: int = 8
    false_alarms_per_user: int = 6
    nda_per_user: int = 6
    seed: int = 0
    format: Literal["json", "ndjson"] = "json"
    defect_rate: float = 0.0


@dataclass
class SynthResult:
    """What was written: files, events per type and user, datapoints, injected defects."""

    files: list[Path]
    events_by_type: dict[str, int]
    events_by_user: dict[str, int]
    datapoints: int
    defects: Counter = field(default_factory=Counter)
    spec: SynthSpec = field(default_factory=SynthSpec)

    def to_dict(self) -> dict[str, Any]:
        return {"generator": "osdml.data.synthetic", "spec": asdict(self.spec),
                "files": [p.name for p in self.files], "events_by_type": self.events_by_type,
                "events_by_user": self.events_by_user, "datapoints": self.datapoints,
                "defects": dict(sorted(self.defects.items()))}


def write_synthetic(out_dir: str | Path, spec: SynthSpec | None = None,
                    progress: Callable[[int], None] | None = None) -> SynthResult:
    """Generate a synthetic OSDB release into `out_dir` (one file per event kind).

    Parameters
    ----------
    out_dir : path-like
        Created if missing. Files: ``osdb_synth_{allSeizures,falseAlarms,ndaEvents}.json``
        (``.ndjson`` with one event per line), and ``.osdml-synth.json`` recording the spec,
        the counts and the injected defects.
    spec : SynthSpec, optional
    progress : callable, optional
        Called with 1 after each event is written.

    Returns
    -------
    SynthResult

    Raises
    ------
    ValueError
        If a count is negative, ``users`` < 1 or ``defect_rate`` not in [0, 1].
    """
    spec = spec or SynthSpec()
    if spec.users < 1 or min(spec.seizures_per_user, spec.false_alarms_per_user,
                             spec.nda_per_user) < 0:
        raise ValueError("users must be at least 1 and event counts not negative")
    if not 0 <= spec.defect_rate <= 1:
        raise ValueError(f"defect_rate={spec.defect_rate} is not in [0, 1]")
    if not 0 <= spec.seed < 2**32:
        raise ValueError(f"seed={spec.seed} is not in [0, 2**32)")
    out = Path(out_dir)
    suffix = ".ndjson" if spec.format == "ndjson" else ".json"
    result = SynthResult([], {}, {}, 0, Counter(), spec)
    for kind, name in KINDS.items():
        path = out / f"osdb_synth_{name}{suffix}"
        with atomic_write(path, "w", encoding="utf-8") as f:
            n = _write_events(f, generate_events(spec, kind, result.defects), spec.format,
                              result, progress)
        result.files.append(path)
        result.events_by_type[kind] = n
    write_json(out / INFO_NAME, result.to_dict())
    return result


def _write_events(f, events: Iterator[dict], fmt: str, result: SynthResult, progress) -> int:
    n = 0
    f.write("" if fmt == "ndjson" else "[\n")
    for ev in events:
        if fmt == "ndjson":
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")
        else:
            f.write((",\n" if n else "") + json.dumps(ev, separators=(",", ":")))
        n += 1
        result.datapoints += len(ev["datapoints"])
        user = str(ev["userId"])
        result.events_by_user[user] = result.events_by_user.get(user, 0) + 1
        if progress is not None:
            progress(1)
    f.write("" if fmt == "ndjson" else "\n]\n")
    return n


def user_profiles(spec: SynthSpec) -> list[UserProfile]:
    """The users of `spec`, ids 1..users, each drawn from its own seeded generator."""
    return [UserProfile.draw(u + 1, np.random.default_rng([spec.seed, u, 0]))
            for u in range(spec.users)]


def generate_events(spec: SynthSpec, kind: str, defects: Counter | None = None) -> Iterator[dict]:
    """Yield the OSDB event dicts of one kind ("Seizure", "False Alarm" or "NDA"), user by user."""
    per_user = {"Seizure": spec.seizures_per_user, "False Alarm": spec.false_alarms_per_user,
                "NDA": spec.nda_per_user}[kind]
    make = {"Seizure": _seizure, "False Alarm": _false_alarm, "NDA": _nda}[kind]
    kind_no = list(KINDS).index(kind) + 1
    for u, user in enumerate(user_profiles(spec)):
        for k in range(per_user):
            rng = np.random.default_rng([spec.seed, u, kind_no, k])
            event_id = kind_no * 10**8 + (u + 1) * 10**4 + k  # unique for < 10^4 users, events
            # events of one user are a few days apart, from 2023-01-01 on
            t0 = 1672531200 + u * 86400 * 365 // max(spec.users, 1) + k * 3 * 86400 \
                + int(rng.integers(0, 86400))
            ev = make(user, rng, event_id, t0)
            if spec.defect_rate > 0:
                _damage(ev["datapoints"], rng, spec.defect_rate,
                        defects if defects is not None else Counter())
            yield ev


# --------------------------------------------------------------------------- events

def _seizure(u: UserProfile, rng, event_id: int, t0: int) -> dict:
    kind = str(rng.choice(motion.SEIZURE_KINDS, p=np.asarray(u.seizure_habits)))
    scale = float(np.clip(u.severity * np.exp(rng.normal(0, 0.6)), 0.03, 1.3))
    pre = str(rng.choice(["sleep", "rest", "walking"], p=[0.3, 0.5, 0.2]))
    n_pre = int(rng.integers(6, 16) * SPD + rng.integers(0, SPD))
    sig, ph = motion.seizure(kind, n_pre, rng, u, scale, pre_activity=pre)
    hr = np.zeros(len(sig))
    hr[ph.tonic_start:ph.clonic_end] = np.linspace(10, 10 + 45 * min(scale * 2, 1),
                                                   ph.clonic_end - ph.tonic_start)
    hr[ph.clonic_end:] = hr[ph.clonic_end - 1] * np.exp(-np.arange(len(sig) - ph.clonic_end)
                                                         / (60 * FS)) + 10
    # the event holds the whole seizure and at least 15 s after it
    n_dp = max(int(rng.integers(30, 49)), -(-ph.clonic_end // SPD) + 3)
    sig, hr = _fit(sig, hr, n_dp * SPD, u, rng)
    alarm_s = int(ph.clonic_start / FS + rng.uniform(5, 30))
    seizure_times = [round(ph.tonic_start / FS - alarm_s), round(ph.clonic_end / FS - alarm_s)]
    subtype = SEIZURE_SUBTYPES[kind]
    desc = f"synthetic {kind} seizure from {pre}"
    return _event(u, rng, event_id, t0, "Seizure", subtype, desc, sig, hr, alarm_s,
                  seizure_times)


def _false_alarm(u: UserProfile, rng, event_id: int, t0: int) -> dict:
    n_dp = int(rng.integers(30, 49))
    act = str(rng.choice(motion.LOOKALIKES, p=np.asarray(u.habits)))
    n = n_dp * SPD
    n_pre = int(rng.uniform(10, 50) * FS)
    n_act = int(min(n - n_pre, rng.uniform(60, 150) * FS))
    before = str(rng.choice(["rest", "walking"]))
    parts = [(before, n_pre, 25 if before == "walking" else 0), (act, n_act, 15),
             ("rest", n - n_pre - n_act, 5)]
    sig, hr = _compose(parts, u, rng)
    name = LOOKALIKE_NAMES[act]
    return _event(u, rng, event_id, t0, "False Alarm", name, f"{name.lower()} (synthetic)",
                  sig, hr, int(n_pre / FS + rng.uniform(10, 20)), None)


def _nda(u: UserProfile, rng, event_id: int, t0: int) -> dict:
    n_dp = int(rng.integers(36, 73))
    n = n_dp * SPD
    k = int(rng.integers(1, 4))
    acts = [str(a) for a in rng.choice(motion.NORMAL, size=k)]
    if rng.random() < 0.25:
        acts[int(rng.integers(k))] = str(rng.choice(motion.LOOKALIKES, p=np.asarray(u.habits)))
    cuts = np.sort(rng.choice(np.arange(SPD, n - SPD), size=k - 1, replace=False))
    bounds = [0, *cuts.tolist(), n]
    hr_of = {"walking": 25, "sleep": -5, "exercise": 40}
    parts = [(a, bounds[i + 1] - bounds[i], hr_of.get(a, 5)) for i, a in enumerate(acts)]
    sig, hr = _compose(parts, u, rng)
    subtype = None if rng.random() < 0.5 else LOOKALIKE_NAMES.get(acts[0], acts[0].title())
    return _event(u, rng, event_id, t0, "NDA", subtype, "normal daily activity (synthetic): "
                  + ", ".join(acts), sig, hr, n // 2 // SPD * 5, None)


def _compose(parts, u: UserProfile, rng) -> tuple[np.ndarray, np.ndarray]:
    sigs, hrs = [], []
    for act, n, hr_offset in parts:
        if n > 0:
            who = u
            if act in motion.LOOKALIKES:  # done gently or vigorously: from subtle to loud
                who = replace(u, amplitude=u.amplitude * float(np.exp(rng.uniform(-1.6, 0.1))))
            sigs.append(motion.ACTIVITIES[act](n, rng, who))
            hrs.append(np.full(n, float(hr_offset)))
    return np.concatenate(sigs), np.concatenate(hrs)


def _fit(sig, hr, n, u, rng):
    """Trim or extend (with stillness) a signal to `n` samples."""
    if len(sig) < n:
        extra = motion.sleep(n - len(sig), rng, u)
        sig = np.concatenate([sig, extra])
        hr = np.concatenate([hr, np.full(n - len(hr), hr[-1])])
    return sig[:n], hr[:n]


def _event(u: UserProfile, rng, event_id, t0, etype, subtype, desc, sig, hr_offset, alarm_s,
           seizure_times) -> dict:
    """Quantise a (n, 3) mg signal like the user's watch and pack it as an OSDB event."""
    n_dp = len(sig) // SPD
    # the watch's own calibration (per-axis sensitivity and offset; one of the user's two
    # watches), noise, +-8 g range
    second = rng.random() < 0.5
    sig = sig * np.asarray(u.gain_2 if second else u.gain) \
        + np.asarray(u.offset_2_mg if second else u.offset_mg)
    xyz = np.clip(sig + rng.normal(0, u.noise_mg, sig.shape), -8000, 8000)
    step = 1.0 if u.source == "Garmin" else 4.0
    xyz_q = np.rint(xyz / step) * step
    mag = np.sqrt((xyz_q ** 2).sum(axis=1))
    mag = np.round(mag, 2) if u.source == "Garmin" else np.rint(mag)
    mag_dp = mag.reshape(n_dp, SPD)
    states, roi, ratio, spec, simple = _osd_algorithm(mag_dp)
    jitter = rng.random(n_dp) < 0.2  # OSD datapoints arrive every 5 s, sometimes 6 s
    times = t0 + 5 * np.arange(1, n_dp + 1) + jitter
    hr = u.hr_rest + hr_offset[SPD - 1::SPD] + rng.normal(0, 2, n_dp)
    dps = []
    for i in range(n_dp):
        dps.append({
            "id": event_id * 1000 + i, "eventId": event_id, "userId": u.user_id,
            "dataTime": _iso(times[i]),
            "hr": int(round(hr[i])) if u.has_hr else -1, "o2Sat": -1,
            "alarmState": states[i], "alarmPhrase": STATE_NAMES[states[i]],
            "specPower": int(spec[i]), "roiPower": int(roi[i]), "roiRatio": int(ratio[i]),
            "simpleSpec": simple[i],
            "rawData": mag_dp[i].tolist() if u.source == "Garmin"
            else mag_dp[i].astype(int).tolist(),
            "rawData3D": xyz_q[i * SPD:(i + 1) * SPD].astype(int).ravel().tolist(),
        })
    ev = {
        "id": event_id, "userId": u.user_id, "type": etype, "subType": subtype, "desc": desc,
        "dataTime": _iso(t0 + alarm_s), "dataSourceName": u.source,
        "osdAlarmState": max(states), "sampleFreq": int(FS), "has3dData": True,
        "hasHrData": u.has_hr, "alarmFreqMin": OSD.freq_min, "alarmFreqMax": OSD.freq_max,
        "alarmThresh": OSD.thresh, "alarmRatioThresh": OSD.ratio_thresh,
    }
    if seizure_times is not None:
        ev["seizureTimes"] = seizure_times
    ev["datapoints"] = dps
    return ev


def _osd_algorithm(mag_dp: np.ndarray):
    """What the app recorded per datapoint: its built-in OSD algorithm (``osdml.app.osd``) with
    its default settings, and the alarm state of its counter on that algorithm alone."""
    from osdml.app.engine import counter_states
    from osdml.app.osd import DEFAULT_SETTINGS as D
    from osdml.app.osd import osd_powers, osd_votes

    spec, roi = osd_powers(mag_dp, D.freq_min, D.freq_max)
    ratio = 10 * roi // spec
    positive = osd_votes(spec, roi, D.thresh, D.ratio_thresh)
    power = np.abs(np.fft.rfft(mag_dp - mag_dp.mean(axis=1, keepdims=True), axis=1)) ** 2 / SPD
    f = np.fft.rfftfreq(SPD, 1 / FS)
    bins = [power[:, (f >= lo) & (f < lo + 1.25)].mean(axis=1) for lo in np.arange(0, 12.5, 1.25)]
    simple = np.rint(np.sqrt(np.stack(bins, axis=1))).astype(int).tolist()
    return counter_states(positive).tolist(), roi, ratio, spec, simple


def _iso(t: float) -> str:
    return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- defects

def _damage(dps: list[dict], rng, rate: float, counts: Counter) -> None:
    """Damage interior datapoints in place, at least 3 apart, and count each defect."""
    i = 2
    while i < len(dps) - 3:
        if rng.random() >= rate:
            i += 1
            continue
        kind = DEFECTS[int(rng.integers(len(DEFECTS)))]
        dp = dps[i]
        if kind == "no_rawData":
            del dp["rawData"]
        elif kind == "wrong_length":
            dp["rawData"] = dp["rawData"][:100]
        elif kind == "nan_or_null":
            dp["rawData"][7] = math.nan if rng.random() < 0.5 else None
        elif kind == "implausible_magnitude":
            dp["rawData"] = [round(v / 101.97, 3) for v in dp["rawData"]]  # m/s^2
        elif kind == "duplicate_time":  # another datapoint stamped with the same time
            dps.insert(i + 1, {**dp, "rawData": dp["rawData"][::-1]})
        elif kind == "logging_copy":  # a manual alarm logs the datapoint again a second later
            t = datetime.fromisoformat(dp["dataTime"]).timestamp() + 1
            dps.insert(i + 1, {**dp, "dataTime": _iso(t), "alarmState": 5,
                               "alarmPhrase": "MANUAL ALARM"})
        elif kind == "out_of_order":
            dps[i], dps[i + 1] = dps[i + 1], dps[i]
        else:  # gap_split: the watch lost the phone for a minute
            for later in dps[i:]:
                later["dataTime"] = _iso(datetime.fromisoformat(later["dataTime"]).timestamp()
                                         + 60)
        counts[kind] += 1
        i += 4
