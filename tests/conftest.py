"""Shared fixtures: a small synthetic OSDB release, an isolated parse cache, one tiny run."""

from __future__ import annotations

import pytest

from osdml.data.synthetic import SynthSpec, write_synthetic

SMALL = SynthSpec(users=4, seizures_per_user=3, false_alarms_per_user=3, nda_per_user=2, seed=7)
TINY_TRAIN = {
    "data": {"augment": {"noise_copies": 1}},
    "train": {"max_epochs": 2, "batch_size": 64, "windows_per_epoch": 128,
              "early_stopping_patience": 0, "lr_peak": 1e-3, "seed": 3},
}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own parse cache; nothing touches ~/.cache."""
    monkeypatch.setenv("OSDML_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A small synthetic release: 4 users x (3 seizures, 3 false alarms, 2 NDA)."""
    out = tmp_path_factory.mktemp("synth")
    write_synthetic(out, SMALL)
    return out


@pytest.fixture(scope="session")
def synth_streams(synth_dir):
    from osdml.data.cache import load_streams

    return load_streams([synth_dir], cache=False)


@pytest.fixture(scope="session")
def tiny_config():
    from osdml.config import load_config

    return load_config(None, TINY_TRAIN)


@pytest.fixture(scope="session")
def tiny_run(synth_dir, tiny_config, tmp_path_factory):
    """One tiny training run with all three artefacts, shared by the export tests."""
    from osdml.pipeline import train_run

    out = tmp_path_factory.mktemp("run")
    return train_run([synth_dir], tiny_config, out, progress=False, cache=False)
