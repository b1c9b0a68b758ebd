"""Importing nnTraining2 configurations, and `osdml config`."""

from __future__ import annotations

import json
import tomllib

import pytest

from osdml.cli import main
from osdml.config import RunConfig
from osdml.errors import InputError
from osdml.nnconfig import import_nnconfig

NNCONFIG = {  # the shape of nnTraining2's nnConfig_deep_pytorch.json, with other values
    "debug": False, "randomSeed": 7,
    "osdbConfig": {"_cacheDir": ".", "osdbFiles": ["osdb_3min_allSeizures.json",
                                                   "osdb_3min_ndaEvents.json"]},
    "dataFileNames": {"allDataFileJson": "allData.json", "testDataFileCsv": "testData.csv"},
    "eventFilters": {"includeUserIds": [], "excludeUserIds": [39, 45.0],
                     "excludeSubTypes": ["Check", "null"], "excludeDataSources": ["Phone"],
                     "requireHrData": False, "requireO2SatData": False, "require3dData": True},
    "dataProcessing": {"window": 125, "step": 125, "oversample": "none", "undersample": "random",
                       "noiseAugmentation": True, "noiseAugmentationFactor": 5,
                       "noiseAugmentationValue": 20.0, "phaseAugmentationStep": 25,
                       "phaseAugmentation": True, "userAugmentation": True, "testProp": 0.3,
                       "validationProp": 0.0, "accSdThreshold": 5.0,
                       "features": ["acc_magnitude"]},
    "modelConfig": {"framework": "pytorch", "_comment": "ignored silently",
                    "modelClass": "user_tools.nnTraining2.deepEpiCnnModel_torch."
                                  "DeepEpiCnnModelPyTorch",
                    "sampleFreq": 25, "bufferSeconds": 30, "epochs": 80, "batchSize": 256,
                    "nLayers": 14, "convDropout": 0.1, "denseDropout": 0.05,
                    "useLrSchedule": True, "useAdamW": True, "adamwBeta1": 0.8,
                    "weightDecay": 0.001, "lrPeak": 0.0002, "lrMainEnd": 0.00002,
                    "warmupSteps": 100, "mainSteps": 75000, "cooldownSteps": 50,
                    "saveBestMinSensitivity": 0.3, "saveBestMaxFpr": 0.02,
                    "modelSelectionMetric": "f1", "useBalancedBatches": False,
                    "earlyStoppingPatience": 4, "unknownKey": 1},
}


def test_import_maps_every_key_or_says_why_not(tmp_path):
    path = tmp_path / "nnConfig.json"
    path.write_text(json.dumps(NNCONFIG))
    cfg, ignored = import_nnconfig(path)
    d, t = cfg.data, cfg.train
    assert d.files == NNCONFIG["osdbConfig"]["osdbFiles"]
    assert d.selection.exclude_users == ["39", "45"] and d.selection.require_3d
    assert d.selection.exclude_sources == ["Phone"]
    assert (d.augment.noise_copies, d.augment.noise_sigma_mg) == (5, 20.0)
    assert d.augment.phase_step_samples == 25 and d.augment.user_balance
    assert d.augment.undersample and not d.augment.oversample
    assert d.split.test_fraction == 0.3 and d.split.seed == t.seed == 7
    assert (cfg.model.conv_dropout, cfg.model.dense_dropout) == (0.1, 0.05)
    assert (t.max_epochs, t.batch_size, t.lr_peak, t.lr_end) == (80, 256, 2e-4, 2e-5)
    assert (t.warmup_steps, t.cooldown_steps, t.betas) == (100, 50, [0.8, 0.999])
    assert t.checkpoint_metric == "f_beta" and t.f_beta == 1.0
    assert (t.min_sensitivity, t.max_fpr, t.early_stopping_patience) == (0.3, 0.02, 4)
    assert not t.balanced_sampling
    keys = dict(ignored)
    assert "DeepEpiCnn always has 14" in keys["modelConfig.nLayers"]
    assert "validation part" in keys["dataProcessing.validationProp"]
    assert keys["modelConfig.unknownKey"] == "not a known nnTraining2 key"
    assert "modelConfig._comment" not in keys and "modelConfig.epochs" not in keys


@pytest.mark.parametrize("content, phrase", [
    ("[1, 2]", "not an object"),
    ('{"a": 1}', "not an nnTraining2 nnConfig"),
    ("{oops", "not a JSON file"),
    ('{"modelConfig": {"epochs": 0}}', "train.max_epochs"),
])
def test_import_refuses_what_is_not_an_nnconfig(tmp_path, content, phrase):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InputError, match=phrase):
        import_nnconfig(path)


def test_cli_config_import_and_show(tmp_path, capsys):
    src = tmp_path / "nnConfig.json"
    src.write_text(json.dumps(NNCONFIG))
    out = tmp_path / "run.toml"
    assert main(["config", "import", str(src), "-o", str(out)]) == 0
    text = out.read_text()
    assert "# ignored modelConfig.nLayers:" in text
    assert RunConfig.model_validate(tomllib.loads(text)).train.max_epochs == 80
    capsys.readouterr()
    assert main(["config", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "max_epochs = 80" in shown and "# Upper bound on training passes." in shown
    assert main(["config", "show"]) == 0
    assert "lr_peak = 0.0001" in capsys.readouterr().out


@pytest.mark.parametrize("model_config, phrase", [
    ({"epochs": "many"}, r"modelConfig.epochs: must be a whole number"),
    ({"epochs": 3.7}, r"modelConfig.epochs: must be a whole number"),
    ({"lrPeak": [1]}, r"modelConfig.lrPeak: must be a finite number"),
    ({"modelSelectionMetric": ["f1"]}, r"modelSelectionMetric: must be a metric name"),
    ({"epochs": 0}, r"modelConfig.epochs \(osdml train.max_epochs\)"),
])
def test_wrong_types_name_the_nnconfig_key(tmp_path, model_config, phrase):
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"modelConfig": model_config}))
    with pytest.raises(InputError, match=phrase):
        import_nnconfig(path)


@pytest.mark.parametrize("filters, phrase", [
    ({"includeUserIds": "39"}, "includeUserIds: must be a list of ids"),
    ({"requireHrData": "false"}, "requireHrData: must be true or false"),
])
def test_strings_are_not_silently_split_or_coerced(tmp_path, filters, phrase):
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"eventFilters": filters}))
    with pytest.raises(InputError, match=phrase):
        import_nnconfig(path)


def test_osdb_files_are_found_in_cache_dir(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"osdbConfig": {"cacheDir": "/data/osdb",
                                               "osdbFiles": ["a.json", "/abs/b.json"]}}))
    cfg, _ = import_nnconfig(path)
    assert cfg.data.files == ["/data/osdb/a.json", "/abs/b.json"]


def test_the_arch_names_match_the_registry():
    from typing import get_args

    from osdml.config import ModelConfig
    from osdml.models import list_models

    assert list(get_args(ModelConfig.model_fields["arch"].annotation)) == list_models()
