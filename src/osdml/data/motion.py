"""Wrist-accelerometer motion models for the synthetic OSDB generator.

Each model returns acceleration in the watch frame, shape (n, 3), float64, in milli-g, sampled
at 25 Hz, gravity included: a gravity vector of 1000 mg whose direction follows the wrist's
orientation, plus the linear acceleration of the movement, plus sensor noise added by the
caller. Frequencies and amplitudes are plausible values for wrist-worn sensors (not fitted to
any dataset) and are varied per user (``UserProfile``):

- rest and sleep: gravity with occasional posture changes, breathing, fidgets;
- walking: arm swing at half the step rate (steps 1.5-2.5 Hz) and heel-strike transients;
- look-alike activities that trigger simple frequency-band detectors: teeth brushing (4-6 Hz),
  hand washing (2.5-4 Hz), typing (irregular taps), car vibration (broadband 5-12 Hz and bumps),
  rhythmic arm movement (exercise, 1-2 Hz, about 1 g), clapping (sharp 1-2 g impulses at a
  steady 2-4 Hz), shaking (3-5 Hz, about 1 g);
- tonic-clonic seizures: a tonic phase of low-amplitude fast tremor (7-11 Hz, under 200 mg)
  with a stiff, fixed posture; a clonic phase of 1-3 g jerks whose rate slows from about 8 Hz
  to about 2 Hz, with irregular intervals; then post-ictal stillness with heavy breathing
  (the slowing of clonic jerks towards the end is the classic clinical description).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FS = 25.0  # samples per second
G_MG = 1000.0


@dataclass(frozen=True)
class UserProfile:
    """Per-user variation: who wears which watch, how they move and how their seizures look."""

    user_id: int
    source: str  # dataSourceName
    has_hr: bool
    amplitude: float  # scale of every movement, 0.7-1.3
    rest_pose: tuple[float, float, float]  # unit gravity direction in the watch frame at rest
    step_hz: float
    tremor_hz: float
    clonic_start_hz: float
    clonic_end_hz: float
    clonic_axis: tuple[float, float, float]
    jerk_g: float  # peak clonic jerk, g
    noise_mg: float
    hr_rest: float
    habits: tuple[float, ...]  # preference weights over LOOKALIKES
    severity: float = 0.3  # median scale of this user's seizure movements (1 = 1-3 g jerks)
    seizure_habits: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0)  # weights over SEIZURE_KINDS
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # the watch's per-axis sensitivity
    offset_mg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # its per-axis zero-g offset
    # the watch that replaced it (a new watch, or firmware that changed the scale): each event
    # is recorded by one of the two
    gain_2: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset_2_mg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def draw(cls, user_id: int, rng: np.random.Generator) -> UserProfile:
        source = str(rng.choice(["Garmin", "PineTime", "BangleJS"], p=[0.5, 0.25, 0.25]))
        return cls(
            user_id=user_id,
            source=source,
            has_hr=bool(rng.random() < 0.85),
            amplitude=float(rng.uniform(0.7, 1.3)),
            rest_pose=tuple(_tilt(np.array([0.0, 0.0, -1.0]), rng, 60)),
            step_hz=float(rng.uniform(1.5, 2.3)),
            tremor_hz=float(rng.uniform(7.0, 11.0)),
            clonic_start_hz=float(rng.uniform(3.5, 6.5)),
            clonic_end_hz=float(rng.uniform(1.2, 2.5)),
            clonic_axis=tuple(_unit(rng.normal(size=3))),
            jerk_g=float(rng.uniform(1.0, 3.0)),
            noise_mg=float(rng.uniform(4.0, 20.0)),
            hr_rest=float(rng.uniform(55, 80)),
            habits=tuple(rng.dirichlet(np.ones(len(LOOKALIKES)) * 0.8)),
            severity=float(np.exp(rng.uniform(np.log(0.12), np.log(0.7)))),
            seizure_habits=tuple(rng.dirichlet(SEIZURE_HABIT_PRIOR)),
            gain=tuple(_watch_scale(rng) * (1 + rng.normal(0, 0.02, 3))),
            offset_mg=tuple(rng.normal(0, 30, 3)),
            gain_2=tuple(_watch_scale(rng) * (1 + rng.normal(0, 0.02, 3))),
            offset_2_mg=tuple(rng.normal(0, 30, 3)),
        )


def _watch_scale(rng: np.random.Generator) -> float:
    """How much a watch reads at 1 g: half read 1 g within a few per cent, half read 1.3-1.7 g
    (as one of the two users of the real sample, docs/data.md)."""
    return float(rng.uniform(0.97, 1.05) if rng.random() < 0.5 else rng.uniform(1.3, 1.7))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _tilt(v: np.ndarray, rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """`v` turned by a random angle up to `max_deg` about a random axis."""
    axis = _unit(np.cross(v, rng.normal(size=3)))
    a = np.deg2rad(rng.uniform(0, max_deg))
    # Rodrigues' rotation formula
    turned = v * np.cos(a) + np.cross(axis, v) * np.sin(a) + axis * (axis @ v) * (1 - np.cos(a))
    return _unit(turned)


def gravity(n: int, rng: np.random.Generator, pose, changes_per_min: float,
            max_deg: float = 50) -> np.ndarray:
    """Gravity (n, 3) mg with posture changes at random times, each a smooth 0.5-2 s turn."""
    g = np.empty((n, 3))
    current = np.asarray(pose, dtype=float)
    t = 0
    while t < n:
        hold = int(rng.exponential(60.0 / max(changes_per_min, 1e-6)) * FS) + 1
        g[t:t + hold] = current
        t += hold
        if t >= n:
            break
        target = _tilt(np.asarray(pose, dtype=float), rng, max_deg)
        turn = int(rng.uniform(0.5, 2.0) * FS)
        w = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, turn))[:, None]
        g[t:t + turn] = _unit(current * (1 - w) + target * w)[: n - t]
        t += turn
        current = target
    return g * G_MG


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve keeping the length of `x` (``mode="same"`` grows short inputs to the kernel)."""
    k = (len(kernel) - 1) // 2
    return np.convolve(x, kernel, mode="full")[k:k + len(x)]


def _axis(rng, base=None, spread=25.0) -> np.ndarray:
    return _tilt(_unit(rng.normal(size=3)) if base is None else np.asarray(base), rng, spread)


def _bouts(n: int, rng, on_s: tuple[float, float], off_s: tuple[float, float]) -> np.ndarray:
    """A 0/1 envelope (n,) of activity bouts with smooth 0.3 s edges."""
    env = np.zeros(n)
    t = int(rng.uniform(0, off_s[1]) * FS)
    while t < n:
        on = int(rng.uniform(*on_s) * FS)
        env[t:t + on] = 1.0
        t += on + int(rng.uniform(*off_s) * FS)
    k = int(0.3 * FS)
    return _smooth(env, np.ones(k) / k)


def _rhythm(n: int, rng, hz: float, jitter: float = 0.03) -> np.ndarray:
    """Phase (n,) radians of an oscillation at `hz` with slow frequency wander."""
    if n == 0:
        return np.zeros(0)
    wander = np.cumsum(rng.normal(0, 1, n))
    wander = wander / (np.abs(wander).max() + 1e-9)
    return 2 * np.pi * np.cumsum(hz * (1 + jitter * wander)) / FS


def _pulse_train(n: int, rate_hz: np.ndarray, rng, width_s: float, jitter: float) -> np.ndarray:
    """Sum of biphasic pulses (n,) at a time-varying rate; onsets fall between samples."""
    out = np.zeros(n)
    t = np.arange(n) / FS
    onset = rng.uniform(0, 1 / rate_hz[0])
    while onset < n / FS:
        i = min(int(onset * FS), n - 1)
        d = t - onset
        near = slice(max(0, i - 4), min(n, i + 6))
        # derivative-of-Gaussian jerk: a sharp push and its rebound
        out[near] += -d[near] / width_s * np.exp(0.5 - 0.5 * (d[near] / width_s) ** 2)
        onset += (1 / rate_hz[i]) * (1 + rng.normal(0, jitter))
    return out


# --------------------------------------------------------------------------- activities

def rest(n, rng, u: UserProfile):
    g = gravity(n, rng, u.rest_pose, changes_per_min=1.0)
    fidget = _bouts(n, rng, (0.5, 1.5), (20, 60)) * rng.normal(0, 60 * u.amplitude, n)
    smooth = _smooth(fidget, np.ones(8) / 8)[:, None]
    return g + smooth * _axis(rng)


def sleep(n, rng, u: UserProfile):
    g = gravity(n, rng, _tilt(np.asarray(u.rest_pose), rng, 70), changes_per_min=0.3, max_deg=80)
    breath = 4 * np.sin(_rhythm(n, rng, rng.uniform(0.2, 0.3)))[:, None] * _axis(rng)
    return g + breath


def walking(n, rng, u: UserProfile):
    step = u.step_hz * rng.uniform(0.93, 1.07)
    phase = _rhythm(n, rng, step / 2)  # arm swing: one cycle per two steps
    swing_deg = rng.uniform(15, 35) * u.amplitude
    pose = np.asarray(u.rest_pose)
    axis = _unit(np.cross(pose, [1.0, 0.0, 0.0]))
    ang = np.deg2rad(swing_deg) * np.sin(phase)[:, None]
    g = _unit(pose * np.cos(ang) + np.cross(axis, pose) * np.sin(ang)) * G_MG
    forward = 250 * u.amplitude * np.sin(phase)[:, None] * _unit(np.cross(axis, pose))
    rate = np.full(n, step)
    heel = 200 * u.amplitude * _pulse_train(n, rate, rng, 0.03, 0.04)[:, None] * pose
    return g + forward + heel


def _oscillation(n, rng, u, hz, amp_mg, on_s, off_s, harmonic=0.3, pose_deg=40, axes=1):
    pose = _tilt(np.asarray(u.rest_pose), rng, pose_deg)
    g = gravity(n, rng, pose, changes_per_min=4.0, max_deg=20)
    phase = _rhythm(n, rng, hz, jitter=0.06)
    env = _bouts(n, rng, on_s, off_s) * (1 + 0.25 * np.sin(_rhythm(n, rng, 0.2)))
    wave = np.sin(phase) + harmonic * np.sin(2 * phase + rng.uniform(0, 6.3))
    a = _axis(rng) * wave[:, None]
    if axes == 2:  # circular rubbing
        a = a + _axis(rng) * np.cos(phase)[:, None] * 0.7
    return g + amp_mg * u.amplitude * env[:, None] * a


def teeth_brushing(n, rng, u):
    return _oscillation(n, rng, u, rng.uniform(4, 6), rng.uniform(150, 500), (5, 25), (1, 3))


def hand_washing(n, rng, u):
    return _oscillation(n, rng, u, rng.uniform(2.5, 4), rng.uniform(150, 400), (5, 15), (1, 4),
                        axes=2)


def exercise(n, rng, u):
    return _oscillation(n, rng, u, rng.uniform(1, 2), rng.uniform(500, 1200), (10, 40), (2, 8),
                        harmonic=0.5, pose_deg=70)


def shaking(n, rng, u):
    return _oscillation(n, rng, u, rng.uniform(3, 5), rng.uniform(700, 1400), (4, 15), (3, 15),
                        harmonic=0.4)


def typing(n, rng, u):
    g = gravity(n, rng, _tilt(np.array([0.0, 0.0, -1.0]), rng, 20), changes_per_min=0.5)
    env = _bouts(n, rng, (3, 20), (1, 6))
    taps = _pulse_train(n, np.full(n, rng.uniform(3, 8)), rng, 0.02, 0.35)
    return g + (rng.uniform(30, 100) * u.amplitude * env * taps)[:, None] * _axis(rng)


def clapping(n, rng, u):
    g = gravity(n, rng, _tilt(np.asarray(u.rest_pose), rng, 60), changes_per_min=2.0)
    env = _bouts(n, rng, (4, 12), (3, 12))
    claps = _pulse_train(n, np.full(n, rng.uniform(2, 4)), rng, 0.025, 0.05)
    return g + (rng.uniform(1000, 2000) * u.amplitude * env * claps)[:, None] * _axis(rng)


def car(n, rng, u):
    g = gravity(n, rng, u.rest_pose, changes_per_min=0.5)
    white = rng.normal(0, 1, (n, 3))
    # band-pass (about 5-12 Hz): short smoothing minus long smoothing, scaled to unit power
    band = np.stack([_smooth(w, np.hanning(5)) - _smooth(w, np.ones(9) / 9)
                     for w in white.T], axis=1)
    band /= band.std() + 1e-9
    drive = 100 * np.sin(_rhythm(n, rng, rng.uniform(0.05, 0.15)))[:, None] * _axis(rng)
    bumps = _pulse_train(n, np.full(n, 0.2), rng, 0.04, 0.8)[:, None] * rng.uniform(150, 300)
    return g + rng.uniform(20, 60) * band + drive + bumps * _axis(rng)


def scratching(n, rng, u):
    """Short bursts of small fast strokes (3-6 Hz, 40-200 mg): a look-alike of subtle seizures."""
    return _oscillation(n, rng, u, rng.uniform(3, 6), rng.uniform(40, 200), (1, 5), (2, 10),
                        harmonic=0.6)


def rocking(n, rng, u):
    """Slow rhythmic rocking of the body or a baby (0.5-1.2 Hz, large slow turns)."""
    pose = np.asarray(u.rest_pose)
    phase = _rhythm(n, rng, rng.uniform(0.5, 1.2), jitter=0.05)
    axis = _unit(np.cross(pose, _axis(rng)))
    ang = np.deg2rad(rng.uniform(10, 35)) * np.sin(phase)[:, None]
    g = _unit(pose * np.cos(ang) + np.cross(axis, pose) * np.sin(ang)) * G_MG
    sway = rng.uniform(40, 200) * u.amplitude * np.sin(phase + 0.5)[:, None] * _axis(rng)
    return g + sway


ACTIVITIES = {"rest": rest, "sleep": sleep, "walking": walking, "teeth brushing": teeth_brushing,
              "hand washing": hand_washing, "typing": typing, "car": car,
              "exercise": exercise, "clapping": clapping, "shaking": shaking,
              "scratching": scratching, "rocking": rocking}
LOOKALIKES = ("teeth brushing", "hand washing", "typing", "car", "exercise", "clapping", "shaking",
              "scratching", "rocking")
NORMAL = ("rest", "sleep", "walking", "typing", "car")


# --------------------------------------------------------------------------- seizures

SEIZURE_KINDS = ("tonic-clonic", "clonic", "tonic", "focal motor", "subtle")
"""What a wrist records of a seizure, from loud to quiet (``seizure``)."""
SEIZURE_HABIT_PRIOR = np.array([3.0, 1.5, 1.0, 2.5, 2.0])  # Dirichlet prior over SEIZURE_KINDS


@dataclass(frozen=True)
class SeizurePhases:
    """Sample indices of the seizure phases within its signal: the seizure runs from
    ``tonic_start`` to ``clonic_end``; its main motor phase starts at ``clonic_start``."""

    tonic_start: int
    clonic_start: int
    clonic_end: int


def tonic_clonic(n_pre: int, rng, u: UserProfile, tonic: bool = True,
                 pre_activity: str = "rest", scale: float = 1.0,
                 clonic_s: tuple[float, float] = (30, 80)) -> tuple[np.ndarray, SeizurePhases]:
    """Pre-ictal activity, then tonic, clonic and post-ictal phases; returns (signal, phases).

    The signal runs ``n_pre`` samples of `pre_activity`, then (if `tonic`) 8-20 s of tremor,
    then `clonic_s` seconds of clonic jerks slowing exponentially from ``clonic_start_hz`` to
    ``clonic_end_hz``, then 60 s of post-ictal stillness (callers trim it). `scale` multiplies
    every seizure movement: 1 gives the user's full 1-3 g jerks; real wrists mostly record far
    less (``seizure``).
    """
    pre = ACTIVITIES[pre_activity](n_pre, rng, u)
    n_tonic = int(rng.uniform(8, 20) * FS) if tonic else 0
    n_clonic = int(rng.uniform(*clonic_s) * FS)
    stiff = _tilt(np.asarray(u.rest_pose), rng, 45)
    tonic_sig = _tonic(pre, n_tonic, stiff, rng, u, scale)
    # clonic: jerks, rate slowing exponentially, irregular, envelope rises then fades
    frac = np.arange(n_clonic) / n_clonic
    rate = u.clonic_start_hz * (u.clonic_end_hz / u.clonic_start_hz) ** frac
    jerks = _pulse_train(n_clonic, rate, rng, 0.035, 0.1)
    env = np.minimum(1, frac / 0.15) * np.where(frac > 0.7, 1 - (frac - 0.7) / 0.45, 1)
    direction = _unit(np.asarray(u.clonic_axis) + 0.25 * rng.normal(size=(n_clonic, 3)))
    g_clonic = gravity(n_clonic, rng, stiff, changes_per_min=6, max_deg=30)
    clonic_sig = g_clonic + (scale * u.jerk_g * G_MG * env * jerks)[:, None] * direction
    ictal = np.concatenate([tonic_sig, clonic_sig])
    ictal = ictal + _unrest(len(ictal), rng, u, scale)
    signal = np.concatenate([pre, ictal, _post_ictal(stiff, rng, u)])
    phases = SeizurePhases(n_pre, n_pre + n_tonic, n_pre + n_tonic + n_clonic)
    return signal, phases


def _tonic(pre, n, stiff, rng, u, scale):
    """The limb stiffens into a new posture and trembles fast and small."""
    if n == 0:
        return pre[:0]
    turn = np.linspace(0, 1, n)[:, None] ** 0.3
    g = _unit(pre[-1] / G_MG * (1 - turn) + stiff * turn) * G_MG
    tremor = (rng.uniform(40, 150) * scale * u.amplitude * np.linspace(0.3, 1, n)
              * np.sin(_rhythm(n, rng, u.tremor_hz, 0.08)))
    return g + tremor[:, None] * _axis(rng, u.clonic_axis, 40)


def _unrest(n, rng, u, scale):
    """Slow irregular arm and body movement (mostly under 1 Hz) that comes and goes through a
    seizure: what makes real seizures' dominant frequency so often slow."""
    slow = _smooth(rng.normal(0, 1, n), np.hanning(int(rng.uniform(15, 40))))
    slow /= slow.std() + 1e-9
    env = _bouts(n, rng, (3, 20), (1, 8))
    amp = rng.uniform(30, 150) * u.amplitude * (0.5 + scale)
    return (amp * env * slow)[:, None] * _axis(rng)


def _post_ictal(pose, rng, u):
    """60 s of post-ictal stillness with heavy slow breathing and, now and then, a slow
    movement (turning over, someone coming to help)."""
    n = int(60 * FS)
    g = gravity(n, rng, _tilt(pose, rng, 30), changes_per_min=0.2, max_deg=10)
    breath = 12 * np.sin(_rhythm(n, rng, rng.uniform(0.3, 0.5)))[:, None] * _axis(rng)
    return g + breath + 1.5 * _unrest(n, rng, u, 0.0)


def seizure(kind: str, n_pre: int, rng, u: UserProfile, scale: float,
            pre_activity: str = "rest") -> tuple[np.ndarray, SeizurePhases]:
    """One seizure of `kind` (``SEIZURE_KINDS``) after ``n_pre`` samples of `pre_activity`.

    Calibrated against real wrist recordings (``osdml data compare``; docs/data.md): inside
    marked seizures the movement gate's 100 x std / mean of a 5 s datapoint has a median near
    7 % and 40 % of datapoints fall under 5 %; motion comes and goes, and the dominant frequency
    is either slow (under 1 Hz, arm movements) or 2-4 Hz (jerks). `scale` (0.03-1.3) multiplies
    the movement.

    - ``tonic-clonic``: tonic tremor, then clonic jerks slowing from ``clonic_start_hz``;
    - ``clonic``: the clonic phase alone;
    - ``tonic``: stiffening and a fine tremor for 15-60 s, hardly above the gate;
    - ``focal motor``: bursts of 2-4 Hz jerking of one arm with pauses, and slow automatisms
      (0.3-1 Hz arm movements), 40-170 s;
    - ``subtle``: intermittent small 3-6 Hz tremor and fidgets, 60-170 s, the kind that barely
      passes the gate.

    Returns (signal of shape (n, 3) mg, phases); the signal ends with 60 s of post-ictal
    stillness that callers trim.
    """
    if kind == "tonic-clonic":
        return tonic_clonic(n_pre, rng, u, True, pre_activity, scale, (15, 110))
    if kind == "clonic":
        return tonic_clonic(n_pre, rng, u, False, pre_activity, scale, (20, 120))
    pre = ACTIVITIES[pre_activity](n_pre, rng, u)
    stiff = _tilt(np.asarray(u.rest_pose), rng, 45)
    if kind == "tonic":
        n = int(rng.uniform(15, 60) * FS)
        sig = _tonic(pre, n, stiff, rng, u, 0.5 + scale)
        jolts = _pulse_train(n, np.full(n, rng.uniform(0.2, 0.8)), rng, 0.05, 0.5)
        sig = sig + ((0.3 + scale) * 400 * jolts)[:, None] * _axis(rng, u.clonic_axis, 40)
        sig = sig + _unrest(n, rng, u, scale)
        return (np.concatenate([pre, sig, _post_ictal(stiff, rng, u)]),
                SeizurePhases(n_pre, n_pre, n_pre + n))
    if kind == "focal motor":
        n = int(rng.uniform(40, 170) * FS)
        g = gravity(n, rng, stiff, changes_per_min=8, max_deg=60)
        env = _bouts(n, rng, (3, 15), (1, 6))
        rate = np.full(n, rng.uniform(2.0, 4.0)) * (1 + 0.15 * np.sin(_rhythm(n, rng, 0.05)))
        jerks = _pulse_train(n, rate, rng, 0.04, 0.15)
        arm = _axis(rng, u.clonic_axis, 30)
        slow = np.sin(_rhythm(n, rng, rng.uniform(0.3, 1.0), 0.1)) * _bouts(n, rng, (4, 20),
                                                                           (2, 10))
        sig = (g + (scale * u.jerk_g * G_MG * env * jerks)[:, None] * arm
               + (scale * rng.uniform(300, 900) * slow)[:, None] * _axis(rng)
               + _unrest(n, rng, u, scale))
        return (np.concatenate([pre, sig, _post_ictal(stiff, rng, u)]),
                SeizurePhases(n_pre, n_pre, n_pre + n))
    if kind == "subtle":
        n = int(rng.uniform(60, 170) * FS)
        pose = _tilt(np.asarray(u.rest_pose), rng, 20)
        g = gravity(n, rng, pose, changes_per_min=2, max_deg=25)
        env = _bouts(n, rng, (2, 12), (1, 10))
        tremor = np.sin(_rhythm(n, rng, rng.uniform(3, 6), 0.1))
        fidget = _smooth(_bouts(n, rng, (0.5, 2), (5, 20)) * rng.normal(0, 1, n), np.ones(6) / 6)
        amp = (0.2 + scale) * rng.uniform(80, 250) * u.amplitude
        sig = g + (amp * env * tremor)[:, None] * _axis(rng, u.clonic_axis, 40) \
            + (amp * 1.5 * fidget)[:, None] * _axis(rng) + _unrest(n, rng, u, scale)
        return (np.concatenate([pre, sig, _post_ictal(pose, rng, u)]),
                SeizurePhases(n_pre, n_pre, n_pre + n))
    raise ValueError(f"unknown seizure kind {kind!r}; one of {', '.join(SEIZURE_KINDS)}")
