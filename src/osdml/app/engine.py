"""The app's alarm engine: what a phone with given settings does with each 5 s datapoint.

Read from the OpenSeizureDetector app (``APP_CONTRACT.md``; ``alg/SdAlgMl.java``,
``alg/SeizureDetector.java``, ``alg/VotingStrategy.java`` at commit 1df556f):

1. **Per-model buffer.** Each model keeps a buffer of its ``input_size`` samples (g); every
   datapoint appends its 125 samples. Until the buffer is full the model's p is 0.
2. **Movement gate.** s = 100 x std / mean of the current datapoint's first 125 ``rawData``
   values (population standard deviation, milli-g; ``movement_pct``). If s < the gate
   (``MlAccelStdThresholdPct``, default 5 %), p = 0 and the model is not run.
3. **Decision.** A model votes ALARM when p > threshold, strictly (``MlSeizureProbability
   ThresholdPct`` / 100 as a float32, default 0.5); p is a float32.
4. **Voting.** The votes of the active algorithms (the built-in OSD algorithm when active, each
   ML model) are combined by the voting strategy (ANY, MAJORITY, UNANIMOUS, WEIGHTED) when there
   is more than one; with one, its own vote.
5. **Counter.** One counter t (s) runs on the combined vote: ALARM adds 5 s; the state is ALARM
   when t > AlarmTime, WARNING when t > WarnTime, else OK. Any other vote: WARNING with
   t = WarnTime + 1 when the previous state was ALARM, else OK with t = 0. No cap.

Every alarm figure osdml reports (fold evaluation, event metrics, best-fold choice, threshold
sweeps, reports, ``osdml replay``) comes from ``run_engine`` / ``counter_states`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

OK, WARNING, ALARM = 0, 1, 2
STATE_NAMES = {OK: "OK", WARNING: "WARNING", ALARM: "ALARM"}
STEP_S = 5  # the app's sample period: seconds added to the counter per ALARM vote
DATAPOINT_SAMPLES = 125  # samples of one datapoint the movement gate looks at
VOTING = ("any", "majority", "unanimous", "weighted")


@dataclass(frozen=True)
class AppSettings:
    """The app's settings that decide alarms (its defaults, ``sd_prefs_*.xml``).

    Attributes
    ----------
    threshold_pct : float, default=50
        ``MlSeizureProbabilityThresholdPct``: a model votes ALARM when p > threshold_pct / 100.
    gate_pct : float, default=5
        ``MlAccelStdThresholdPct``: p = 0 when 100 x std / mean of the datapoint is below it.
    warn_s, alarm_s : float, default=5, 10
        ``WarnTime`` and ``AlarmTime``: WARNING when the counter exceeds warn_s, ALARM when it
        exceeds alarm_s (seconds).
    voting : {"any", "majority", "unanimous", "weighted"}, default="any"
        ``VotingStrategy`` across the active algorithms.
    osd : bool, default=True
        ``OsdAlarmActive``: the built-in OSD algorithm votes beside the models (on by default in
        the app).
    """

    threshold_pct: float = 50.0
    gate_pct: float = 5.0
    warn_s: float = 5.0
    alarm_s: float = 10.0
    voting: str = "any"
    osd: bool = True

    def __post_init__(self) -> None:
        if self.voting not in VOTING:
            raise ValueError(f"voting {self.voting!r}: choose one of {', '.join(VOTING)}")
        for name in ("threshold_pct", "gate_pct"):
            v = getattr(self, name)
            if not 0 <= v <= 100:
                raise ValueError(f"{name}={v:g} is not a percentage in [0, 100]")

    @property
    def threshold(self) -> np.float32:
        """The probability threshold as the app holds it: ``(float) (pct / 100.0)``."""
        return np.float32(self.threshold_pct / 100.0)

    def with_(self, **changes: Any) -> AppSettings:
        """A copy with `changes` (None values ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- per datapoint

def movement_pct(raw_mg: np.ndarray) -> np.ndarray:
    """The app's movement measure of each datapoint (``SdAlgMl.calcRawDataStd``).

    Parameters
    ----------
    raw_mg : np.ndarray of shape (n_datapoints, n_samples), float
        Each datapoint's ``rawData`` in milli-g as recorded (doubles in the app); only the first
        125 samples are used.

    Returns
    -------
    np.ndarray of shape (n_datapoints,), float64
        100 x population standard deviation / mean, in percent (inf or NaN for a zero mean,
        which never gates: the comparison with the gate is False).
    """
    x = np.asarray(raw_mg, dtype=np.float64)[:, :DATAPOINT_SAMPLES]
    mean = x.sum(axis=1) / x.shape[1]
    var = ((x - mean[:, None]) ** 2).sum(axis=1) / x.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * np.sqrt(var) / mean


def app_probability(logits: np.ndarray) -> np.ndarray:
    """p(seizure) as the app computes it from a model's two logits (``softmaxProb``).

    Parameters
    ----------
    logits : np.ndarray of shape (n, 2), float
        The first output of each inference.

    Returns
    -------
    np.ndarray of shape (n,), float32
        exp(z1 - m) / (exp(z0 - m) + exp(z1 - m)) in double, then cast to float32.
    """
    z = np.asarray(logits, dtype=np.float32).astype(np.float64)
    m = np.maximum(z[:, 0], z[:, 1])
    e0, e1 = np.exp(z[:, 0] - m), np.exp(z[:, 1] - m)
    return (e1 / (e0 + e1)).astype(np.float32)


def model_votes(p: np.ndarray, movement: np.ndarray, settings: AppSettings
                ) -> tuple[np.ndarray, np.ndarray]:
    """One model's vote per datapoint, and the p the app uses.

    Parameters
    ----------
    p : np.ndarray of shape (n,), float32
        The model's output for each datapoint; NaN where the buffer is not yet full (no
        inference).
    movement : np.ndarray of shape (n,), float64
        ``movement_pct`` of each datapoint.
    settings : AppSettings

    Returns
    -------
    (votes, p_app)
        ``votes`` (n,) bool: ALARM votes (p > threshold, strictly); ``p_app`` (n,) float32: the
        p the app uses, 0 where the buffer is not full or the movement gate fired.
    """
    p = np.asarray(p, dtype=np.float32)
    gated = np.asarray(movement) < settings.gate_pct
    p_app = np.where(np.isnan(p) | gated, np.float32(0), p).astype(np.float32)
    return p_app > settings.threshold, p_app


def combine(votes: Sequence[np.ndarray], confidence: Sequence[np.ndarray], strategy: str
            ) -> np.ndarray:
    """Combine algorithms' votes into the app's combined ALARM vote per datapoint.

    ``SeizureDetector.processData``: with one algorithm its vote is the combined vote; with
    more, ``VotingStrategy``: ``any`` (some ALARM), ``majority`` (ALARM votes > half the
    algorithms), ``unanimous`` (all ALARM), ``weighted`` (mean of state x confidence > 1.5,
    state ALARM = 2, every weight 1; confidence is p for a model and 1 for the OSD algorithm).
    A WARNING from voting counts as not ALARM for the counter.

    Parameters
    ----------
    votes : sequence of np.ndarray of shape (n,), bool
        One per algorithm.
    confidence : sequence of np.ndarray of shape (n,), float
        One per algorithm (used by ``weighted`` only).
    strategy : {"any", "majority", "unanimous", "weighted"}

    Returns
    -------
    np.ndarray of shape (n,), bool

    Raises
    ------
    ValueError
        If there is no algorithm or the strategy is unknown.
    """
    if not len(votes):
        raise ValueError("no algorithm votes")
    v = np.stack([np.asarray(x, dtype=bool) for x in votes])
    if len(v) == 1:
        return v[0]
    if strategy == "any":
        return v.any(axis=0)
    if strategy == "majority":
        return v.sum(axis=0) > len(v) / 2.0
    if strategy == "unanimous":
        return v.all(axis=0)
    if strategy == "weighted":
        conf = np.stack([np.asarray(c, dtype=np.float32) for c in confidence])
        # float arithmetic as the app's: state * confidence * weight, summed in double
        total = (np.where(v, ALARM, OK) * conf.astype(np.float64)).sum(axis=0)
        return total / len(v) > 1.5
    raise ValueError(f"voting {strategy!r}: choose one of {', '.join(VOTING)}")


def counter_states(alarm_votes: Sequence[bool] | np.ndarray, warn_s: float = 5.0,
                   alarm_s: float = 10.0, step_s: float = STEP_S) -> np.ndarray:
    """The app's WARNING / ALARM counter over one event's combined votes.

    Parameters
    ----------
    alarm_votes : sequence of bool, shape (n,)
        Combined ALARM vote of each datapoint, in time order.
    warn_s, alarm_s : float
        WarnTime and AlarmTime (s).
    step_s : float
        Seconds added per ALARM vote (the app's sample period, 5).

    Returns
    -------
    np.ndarray of shape (n,), int8
        State after each datapoint: 0 OK, 1 WARNING, 2 ALARM.

    Examples
    --------
    >>> counter_states([True, True, False, True]).tolist()
    [0, 1, 0, 0]
    >>> counter_states([True, True, True, False, True]).tolist()
    [0, 1, 2, 1, 2]
    """
    t, state = 0.0, OK
    votes = np.asarray(alarm_votes, dtype=bool).tolist()
    out = np.zeros(len(votes), dtype=np.int8)
    for i, vote in enumerate(votes):
        if vote:
            t += step_s
            state = ALARM if t > alarm_s else WARNING if t > warn_s else OK
        elif state == ALARM:
            state, t = WARNING, warn_s + 1
        else:
            state, t = OK, 0.0
        out[i] = state
    return out


def alarm_onsets(states: np.ndarray) -> np.ndarray:
    """Indices where the state enters ALARM from another state (alarm episodes)."""
    states = np.asarray(states)
    if not len(states):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero((states == ALARM) & np.r_[True, states[:-1] != ALARM])


# --------------------------------------------------------------------------- one event

@dataclass
class EngineResult:
    """The engine over one event.

    ``votes`` (n_algorithms, n) bool and ``p_app`` (n_models, n) float32 per algorithm;
    ``combined`` (n,) bool; ``states`` (n,) int8; ``algorithms`` the names in vote order
    (``"osd"`` first when active, then the models).
    """

    algorithms: list[str]
    votes: np.ndarray
    p_app: np.ndarray
    combined: np.ndarray
    states: np.ndarray

    @property
    def onsets(self) -> np.ndarray:
        return alarm_onsets(self.states)


def run_engine(p: np.ndarray | None, movement: np.ndarray, osd_votes: np.ndarray | None,
               settings: AppSettings, names: Sequence[str] | None = None) -> EngineResult:
    """Run the app over one event's datapoints.

    Parameters
    ----------
    p : np.ndarray of shape (n_models, n), float32, or None
        Each model's output per datapoint, NaN before its buffer is full; None or zero models
        for the OSD algorithm alone.
    movement : np.ndarray of shape (n,), float64
        ``movement_pct`` per datapoint.
    osd_votes : np.ndarray of shape (n,), bool, or None
        The OSD algorithm's ALARM vote per datapoint; used when ``settings.osd``.
    settings : AppSettings
    names : sequence of str, optional
        Model names (default ``model0``, ...).

    Returns
    -------
    EngineResult

    Raises
    ------
    ValueError
        If no algorithm is active (no model and the OSD algorithm off or absent).
    """
    p = np.empty((0, len(movement)), np.float32) if p is None else np.atleast_2d(p)
    names = list(names) if names is not None else [f"model{i}" for i in range(len(p))]
    votes, conf, algos, p_apps = [], [], [], []
    if settings.osd and osd_votes is not None:
        votes.append(np.asarray(osd_votes, dtype=bool))
        conf.append(np.ones(len(movement), np.float32))
        algos.append("osd")
    for name, pm in zip(names, p, strict=True):
        v, pa = model_votes(pm, movement, settings)
        votes.append(v)
        conf.append(pa)
        p_apps.append(pa)
        algos.append(name)
    combined = combine(votes, conf, settings.voting)
    return EngineResult(algos, np.stack(votes), np.stack(p_apps) if p_apps else
                        np.empty((0, len(movement)), np.float32), combined,
                        counter_states(combined, settings.warn_s, settings.alarm_s))
