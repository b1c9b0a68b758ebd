"""The built-in OSD algorithm (SdAlgOsd.processSdData) against spectra computed by hand."""

import numpy as np

from osdml.app.osd import DEFAULT_SETTINGS, freq_bin, java_magnitudes, osd_powers, osd_votes

N, FS = 125, 25.0
t = np.arange(N) / FS


def tone(bin_k: int, amplitude: float = 100.0, phase: str = "sin") -> np.ndarray:
    """1000 mg of gravity plus a tone exactly on FFT bin `bin_k` (k x 0.2 Hz)."""
    wave = np.sin if phase == "sin" else np.cos
    return 1000.0 + amplitude * wave(2 * np.pi * bin_k * FS / N * t)


def test_bins_from_hz_as_the_app_truncates():
    assert freq_bin(3, N) == 15 and freq_bin(8, N) == 40 and freq_bin(12, N) == 60


def test_a_5_hz_tone_by_hand():
    # |X_25|^2 = (A n / 2)^2 = 39062500: specPower = |X|^2 / n / 2 = 156250 -> 156;
    # roiPower = |X|^2 / 25 bins (15..39) = 1562500 -> 1562
    spec, roi = osd_powers(tone(25)[None, :], 3, 8)
    assert spec.tolist() == [156]
    assert roi.tolist() == [1562]  # 1562500 / 1000, integer division
    # 10 x 1562 / 156 = 100 > 57 and 1562 > 100: ALARM
    assert osd_votes(spec, roi, DEFAULT_SETTINGS.thresh, DEFAULT_SETTINGS.ratio_thresh).tolist() \
        == [True]


def test_a_1_hz_tone_is_outside_the_roi():
    spec, roi = osd_powers(tone(5)[None, :], 3, 8)
    assert spec.tolist() == [156] and roi.tolist() == [0]
    assert not osd_votes(spec, roi, 100, 57)[0]


def test_a_tone_above_the_cutoff_counts_nowhere_and_rest_is_spec_power_one():
    spec, roi = osd_powers(np.stack([tone(61), np.full(N, 1000.0)]), 3, 8)
    assert spec.tolist() == [1, 1]  # 0 becomes 1 (no division by zero)
    assert roi.tolist() == [0, 0]


def test_the_roi_follows_the_recorded_settings_per_datapoint():
    x = np.stack([tone(35), tone(35)])  # 7 Hz
    spec, roi = osd_powers(x, np.array([3, 6]), np.array([8, 12]))
    assert roi.tolist() == [1562, 1302]  # 39062500 / 25 bins (15..39), / 30 bins (30..59)


def test_votes_use_long_integer_arithmetic():
    spec = np.array([17, 18, 1, 1])
    roi = np.array([101, 101, 100, 101])
    # 1010 / 17 = 59 > 57; 1010 / 18 = 56; roiPower must exceed 100 strictly
    assert osd_votes(spec, roi, 100, 57).tolist() == [True, False, False, True]


def test_jtransforms_packing_of_an_odd_length():
    # bin 62 of 125 samples: its imaginary part is packed at index 1, so the app reads only
    # the real part there; bins 1..61 are read whole
    sin62, cos62 = tone(62, phase="sin")[None, :], tone(62, phase="cos")[None, :]
    assert java_magnitudes(sin62)[0, 62] < 1e-6
    assert java_magnitudes(cos62)[0, 62] > 1e7
    full = np.abs(np.fft.rfft(tone(7)))[7] ** 2
    assert java_magnitudes(tone(7)[None, :])[0, 7] == full


def test_streams_carry_the_rerun_algorithm_and_the_recorded_values(synth_streams):
    osd = np.asarray(synth_streams.dp_osd)
    assert osd.shape == (len(synth_streams.dp_time_s), 6)
    recorded = osd[:, 4] >= 0
    assert recorded.all()  # the generator records what the app's algorithm gave
    assert (osd[:, 0] == osd[:, 4]).all() and (osd[:, 1] == osd[:, 5]).all()
    assert (osd[:, 2] == DEFAULT_SETTINGS.thresh).all()
