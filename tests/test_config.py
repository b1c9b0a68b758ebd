"""Run configuration: defaults, files, overrides and one-line errors naming the key path."""

from __future__ import annotations

import pytest

from osdml.config import load_config
from osdml.errors import InputError


def test_defaults_follow_the_osd_deep_configuration():
    cfg = load_config()
    d = cfg.data
    assert d.reader.sample_rate_hz == 25 and d.reader.samples_per_datapoint == 125
    assert d.windows.samples(25) == (750, 125)
    assert d.augment.noise_copies == 10 and d.augment.noise_sigma_mg == 30
    assert d.selection.labels == {"seizure": 1, "false alarm": 0, "nda": 0}


def test_toml_and_json_files(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('[data.split]\nmethod = "kfold"\nn_folds = 3\n'
                    '[data.selection]\ninclude_users = [39, "45"]\n')
    cfg = load_config(toml)
    assert cfg.data.split.method == "kfold" and cfg.data.split.n_folds == 3
    assert cfg.data.selection.include_users == ["39", "45"]
    js = tmp_path / "run.json"
    js.write_text('{"data": {"augment": {"noise_copies": 0}}}')
    assert load_config(js).data.augment.noise_copies == 0


def test_overrides_win_and_none_means_unset(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("[data.split]\nn_folds = 3\nseed = 1\n")
    cfg = load_config(toml, {"data": {"split": {"n_folds": 7, "seed": None}}})
    assert cfg.data.split.n_folds == 7 and cfg.data.split.seed == 1


@pytest.mark.parametrize("text, phrase", [
    ("[data.split]\nmethod = \"random\"\n",
     r"run.toml: data.split.method: must be one of 'holdout', 'kfold' or 'nested'"),
    ("[data.split]\nn_folds = 1\n", r"data.split.n_folds: Input should be greater than or equal"),
    ("[data.windws]\nhop_s = 5\n", r"data.windws: unknown key"),
    ("[data.split\n", r"is not valid TOML"),
])
def test_errors_name_the_file_and_key_path(tmp_path, text, phrase):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=phrase) as e:
        load_config(path)
    assert "\n" not in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_window_must_be_whole_samples(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[data.windows]\nhop_s = 5.02\n")
    with pytest.raises(InputError, match=r"c.toml: data.windows.hop_s=5.02 s at 25 Hz is 125.5 "
                       "samples"):
        load_config(path)


@pytest.mark.parametrize("text", ["[data.reader]\nsample_rate_hz = inf\n",
                                  "[train]\nseed = -1\n",
                                  "[data.selection.labels]\nseizure = -1\n",
                                  "[data.selection]\ninclude_users = [[1]]\n"])
def test_values_that_would_crash_later_are_refused(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InputError, match="c.toml: data|c.toml: train"):
        load_config(path)
