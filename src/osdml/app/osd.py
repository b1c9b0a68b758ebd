"""The app's built-in OSD algorithm (``alg/SdAlgOsd.processSdData``), re-run from raw samples.

Each datapoint on its own 125 ``rawData`` samples (milli-g), sample rate fixed at 25 Hz:

- real FFT of the samples (JTransforms ``DoubleFFT_1D.realForward``; |X_i|^2 = Re^2 + Im^2);
- bins from Hz by ``int(n * f / fs)``; cut-off 12 Hz; region of interest (ROI) from
  ``alarmFreqMin`` to ``alarmFreqMax`` (3 and 8 Hz: bins 15 to 39, the upper bin excluded);
- specPower = sum of |X_i|^2 over i = 1 .. n/2 - 1 with i <= the cut-off bin, / n / 2;
  roiPower = sum over the ROI bins / their count;
- both cast to long and divided by 1000 (integer division; ``ACCEL_SCALE_FACTOR``): the values
  the app records as ``specPower`` and ``roiPower``; a specPower of 0 becomes 1;
- the datapoint votes ALARM when roiPower > ``alarmThresh`` and 10 x roiPower / specPower >
  ``alarmRatioThresh`` (long integer arithmetic).

The settings are those recorded in the data (on the datapoint, else on the event), else the
app's defaults (``DEFAULT_SETTINGS``: 3 Hz, 8 Hz, 100, 57, from ``sd_prefs_osd.xml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE_HZ = 25  # hard-coded in SdAlgOsd ("FIXME - should come from sdData")
CUTOFF_HZ = 12
ACCEL_SCALE_FACTOR = 1000


@dataclass(frozen=True)
class OsdSettings:
    """The OSD algorithm's settings (``AlarmFreqMin``, ``AlarmFreqMax`` in Hz, ``AlarmThresh``,
    ``AlarmRatioThresh``), whole numbers as the app parses them (Java shorts)."""

    freq_min: int = 3
    freq_max: int = 8
    thresh: int = 100
    ratio_thresh: int = 57


DEFAULT_SETTINGS = OsdSettings()


def freq_bin(freq_hz: float, n: int, fs: float = SAMPLE_RATE_HZ) -> int:
    """``SdAlgOsd.freq2FftBin``: ``(int) (n * f / fs)``."""
    return int(n * freq_hz / fs)


def osd_powers(raw_mg: np.ndarray, freq_min: np.ndarray | int, freq_max: np.ndarray | int
               ) -> tuple[np.ndarray, np.ndarray]:
    """specPower and roiPower of each datapoint as the app records them.

    Parameters
    ----------
    raw_mg : np.ndarray of shape (n_datapoints, n), float
        ``rawData`` in milli-g (n = 125 at 25 Hz).
    freq_min, freq_max : int or np.ndarray of shape (n_datapoints,), int
        The ROI in Hz, per datapoint or for all.

    Returns
    -------
    (spec_power, roi_power) : np.ndarray of shape (n_datapoints,), int64
        After the app's long cast and integer division by 1000; specPower 0 becomes 1.
    """
    x = np.asarray(raw_mg, dtype=np.float64)
    m, n = x.shape
    mag = java_magnitudes(x)
    half = n // 2
    cutoff = freq_bin(CUTOFF_HZ, n)
    mag[:, cutoff + 1:half] = 0.0  # the app zeroes bins above the cut-off (i < n / 2 only)
    spec = mag[:, 1:min(cutoff, half - 1) + 1].sum(axis=1) / n / 2
    lo = np.broadcast_to(np.asarray(freq_min), (m,))
    hi = np.broadcast_to(np.asarray(freq_max), (m,))
    csum = np.concatenate([np.zeros((m, 1)), np.cumsum(mag, axis=1)], axis=1)
    roi = np.zeros(m, dtype=np.float64)
    for fmin, fmax in {(float(a), float(b)) for a, b in zip(lo, hi, strict=True)}:
        rows = (lo == fmin) & (hi == fmax)
        a, b = freq_bin(int(fmin), n), freq_bin(int(fmax), n)
        if a < 0 or b > n:  # the app's loop would index outside its array: it logs, votes OK
            roi[rows] = 0.0
            continue
        total = csum[rows, b] - csum[rows, a] if b > a else np.zeros(int(rows.sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            roi[rows] = total / (b - a)  # b == a: 0 / 0 = NaN, which (long) makes 0
    spec_l = _long_div(spec)
    roi_l = _long_div(roi)
    spec_l[spec_l == 0] = 1
    return spec_l, roi_l


def java_magnitudes(raw_mg: np.ndarray) -> np.ndarray:
    """|X_i|^2 as ``SdAlgOsd.getMagnitude`` reads them from JTransforms' packed output.

    ``realForward`` packs the spectrum of n samples into the first n doubles of a 2n array
    (the rest stays 0): Re_k at 2k and Im_k at 2k + 1 for 0 < k < n / 2, and at index 1 the
    last real part (Re_{n/2}, n even) or the last imaginary part (Im_{(n-1)/2}, n odd). So bin
    i reads Re_i^2 + Im_i^2 for 0 < i < n / 2; bin (n-1)/2 of an odd n reads only its real
    part; bins from n / 2 on read zeros.

    Parameters
    ----------
    raw_mg : np.ndarray of shape (m, n), float64

    Returns
    -------
    np.ndarray of shape (m, n), float64
        Bins 0 .. n - 1 (the indices ``getMagnitude`` can read without leaving the array).
    """
    x = np.asarray(raw_mg, dtype=np.float64)
    m, n = x.shape
    X = np.fft.rfft(x, axis=1)
    out = np.zeros((m, n), dtype=np.float64)
    full = (n - 1) // 2 if n % 2 else n // 2 - 1  # bins with both parts packed
    out[:, 1:full + 1] = np.abs(X[:, 1:full + 1]) ** 2
    if n % 2:
        out[:, (n - 1) // 2] = X[:, (n - 1) // 2].real ** 2
        last = X[:, (n - 1) // 2].imag
    else:
        last = X[:, n // 2].real
    out[:, 0] = X[:, 0].real ** 2 + last ** 2
    return out


def _long_div(v: np.ndarray) -> np.ndarray:
    """``(long) v / 1000``: truncate toward zero, then integer division (Java semantics)."""
    v = np.nan_to_num(np.asarray(v, dtype=np.float64), nan=0.0, posinf=2**62, neginf=-2**62)
    as_long = np.trunc(v).astype(np.int64)
    q = np.abs(as_long) // ACCEL_SCALE_FACTOR
    return np.where(as_long < 0, -q, q)


def osd_votes(spec_power: np.ndarray, roi_power: np.ndarray, thresh: np.ndarray | int,
              ratio_thresh: np.ndarray | int) -> np.ndarray:
    """The OSD algorithm's ALARM vote per datapoint from recorded-style powers.

    Parameters
    ----------
    spec_power, roi_power : np.ndarray of shape (n,), int64
        As ``osd_powers`` returns them (specPower never 0).
    thresh, ratio_thresh : int or np.ndarray of shape (n,), int

    Returns
    -------
    np.ndarray of shape (n,), bool
        roiPower > thresh and 10 x roiPower / specPower > ratio_thresh (integer division
        truncating toward zero, as Java's long division).
    """
    spec = np.asarray(spec_power, dtype=np.int64)
    roi = np.asarray(roi_power, dtype=np.int64)
    ratio = _java_div(10 * roi, np.where(spec == 0, 1, spec))
    return (roi > np.asarray(thresh)) & (ratio > np.asarray(ratio_thresh))


def _java_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) ^ (b < 0), -q, q)
