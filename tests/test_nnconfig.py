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
    cfg, notes = import_nnconfig(path)
    d, t = cfg.data, cfg.train
    assert d.files == NNCONFIG["osdbConfig"]["osdbFiles"]
    assert d.selection.exclude_users == ["39", "45"] and d.selection.require_3d
    assert d.selection.exclude_sources == ["Phone"]
    assert (d.augment.noise_copies, d.augment.noise_sigma_mg) == (5, 20.0)
    assert d.augment.phase_step_samples == 25 and d.augment.user_balance
    assert d.augment.user_balance_threshold == 10  # nnTraining2's default
    assert d.augment.undersample and not d.augment.oversample
    assert d.split.test_fraction == 0.3 and d.split.seed == t.seed == 7
    assert (cfg.model.conv_dropout, cfg.model.dense_dropout) == (0.1, 0.05)
    assert (t.batch_size, t.lr_peak, t.lr_end) == (256, 2e-4, 2e-5)
    assert (t.warmup_steps, t.cooldown_steps, t.betas) == (100, 50, [0.8, 0.999])
    # f1 is nnTraining2's F-beta of sensitivity and specificity with beta 1
    assert t.checkpoint_metric == "f_beta_spec" and t.f_beta == 1.0
    assert (t.min_sensitivity, t.max_fpr) == (0.3, 0.02)
    # useLrSchedule: step-based to totalTrainingSteps (default 50000), no early stopping
    assert (t.schedule, t.max_steps, t.early_stopping_patience) == ("warmup_cosine", 50000, 0)
    assert not t.balanced_sampling
    assert (cfg.app.gate_pct, cfg.app.tune_gates_pct) == (5.0, [5.0])  # accSdThreshold
    kinds = {n.key: n.kind for n in notes}
    why = {n.key: n.why for n in notes}
    assert "DeepEpiCnn always has 14" in why["modelConfig.nLayers"]
    assert kinds["dataProcessing.validationProp"] == "differs"
    assert "test part" in why["dataProcessing.validationProp"]
    assert "totalTrainingSteps" in why["modelConfig.epochs"]
    assert why["modelConfig.unknownKey"] == "not a known nnTraining2 key"
    assert "modelConfig._comment" not in kinds and "modelConfig.lrPeak" not in kinds


def _imported(tmp_path, data_processing=None, model_config=None, **top):
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"dataProcessing": data_processing or {},
                                "modelConfig": model_config or {}, **top}))
    cfg, notes = import_nnconfig(path)
    return cfg, {n.key: n for n in notes}


def test_validation_prop_is_a_share_of_all_events(tmp_path):
    cfg, notes = _imported(tmp_path, {"testProp": 0.2, "validationProp": 0.15})
    assert cfg.data.split.val_fraction == pytest.approx(0.15 / 0.8)
    assert "dataProcessing.validationProp" not in notes
    # 1.0 is accepted by nnTraining2 ("no separate validation"): imported, with the reason
    cfg, notes = _imported(tmp_path, {"testProp": 0.2, "validationProp": 1.0})
    assert cfg.data.split.val_fraction == 0.2
    assert notes["dataProcessing.validationProp"].kind == "differs"


def test_upstream_cnn_lstm_xyz_configuration(tmp_path):
    """The shape of nnConfig_cnn_lstm_pytorch.json / nnConfig_lstm_3d.json (2026)."""
    cfg, notes = _imported(tmp_path, {
        "features": ["accX", "accY", "accZ"], "accSdThreshold": 5.0,
        "sampleRateAugmentation": True, "sampleRateAugmentationFactors": [0.9, 1.0, 1.1],
        "userAugmentation": True, "userAugmentationThreshold": 4,
        "noiseAugmentationNonSeizure": True, "noiseAugmentationNonSeizureFactor": 5,
        "noiseAugmentationNonSeizureValue": 5.0,
        "noiseAugmentationNonSeizurePairs": [
            {"type": 0, "subType": "Typing"},
            {"type": 0, "subType": "Sorting", "factor": 8, "value": 8.0},
            {"type": 1, "subType": "Tonic-Clonic"}],
        "dcNormalisation": True},
        {"modelClass": "user_tools.nnTraining2.cnnLstmModel_torch.CnnLstmModelPyTorch",
         "bufferSeconds": 30, "lstmWindowSeconds": 45.0, "cnnWindowSeconds": 1.0,
         "featureDim": 32, "lstmHiddenDim": 64, "lstmNumLayers": 1, "lstmDropout": 0.25,
         "accelInputMode": "xyz", "inputChannels": 3, "lrStart": 1e-6, "useLrSchedule": True,
         "totalTrainingSteps": 1000, "warmupSteps": 100, "cooldownSteps": 100,
         "evalEverySteps": 500, "modelSelectionMetric": "f_beta", "fBeta": 2.0,
         "posWeightMultiplier": 2.0, "epochs": 150})
    m, a, t = cfg.model, cfg.data.augment, cfg.train
    assert (m.arch, m.feature_dim, m.lstm_hidden, m.lstm_layers, m.lstm_dropout) == (
        "cnn_lstm", 32, 64, 1, 0.25)
    assert cfg.data.windows.input == "xyz" and cfg.data.windows.window_s == 45.0
    assert a.sample_rate_factors == [0.9, 1.1] and a.user_balance_threshold == 4
    assert (a.negative_noise_copies, a.negative_noise_sigma_mg) == (5, 5.0)
    assert [(r.subtype, r.copies, r.sigma_mg) for r in a.negative_noise] == [
        ("Typing", None, None), ("Sorting", 8, 8.0)]
    assert (t.checkpoint_metric, t.f_beta, t.lr_start, t.max_steps) == (
        "f_beta_spec", 2.0, 1e-6, 1000)
    assert t.class_weights == [0.5, 2.0]  # nnTrainer.py: weight=[1/p, p]
    assert "modelConfig.posWeightMultiplier" not in notes
    assert notes["dataProcessing.accSdThreshold"].kind == "differs"
    assert notes["dataProcessing.dcNormalisation"].kind == "differs"
    assert "Tonic-Clonic" in notes["dataProcessing.noiseAugmentationNonSeizurePairs"].why
    assert notes["modelConfig.evalEverySteps"].kind == "ignored"


@pytest.mark.parametrize("model_class, arch, differs", [
    ("user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch", "deep_epi_cnn",
     False),
    ("user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel", "deep_epi_cnn", False),
    ("user_tools.nnTraining2.cnnLstmModel_torch.CnnLstmModelPyTorch", "cnn_lstm", False),
    ("rfModel.RfModel", "deep_epi_cnn", True),
])
def test_model_class_picks_the_architecture_or_says_it_differs(tmp_path, model_class, arch,
                                                               differs):
    cfg, notes = _imported(tmp_path, model_config={"modelClass": model_class})
    assert cfg.model.arch == arch
    assert ("modelConfig.modelClass" in notes) == differs


def test_absent_selection_metric_is_nntraining2s_dual_improvement(tmp_path):
    cfg, _ = _imported(tmp_path, model_config={"saveBestOnFarReduction": 0.05,
                                               "saveBestOnSensitivityTolerance": 0.2,
                                               "useLrSchedule": False, "lrStart": 1e-5,
                                               "epochs": 12, "earlyStoppingPatience": 3})
    t = cfg.train
    assert (t.checkpoint_metric, t.dual_far_reduction, t.dual_sensitivity_tolerance) == (
        "dual_improvement", 0.05, 0.2)
    assert (t.schedule, t.lr_start, t.max_epochs, t.max_steps) == ("plateau", 1e-5, 12, None)
    assert t.early_stopping_patience == 3


def test_a_schedule_that_cannot_fit_its_steps_is_refused_with_the_key(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"modelConfig": {"useLrSchedule": True, "totalTrainingSteps": 100,
                                                "warmupSteps": 80, "cooldownSteps": 80}}))
    with pytest.raises(InputError, match="cannot fit"):
        import_nnconfig(path)


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
    assert "# differs dataProcessing.validationProp:" in text
    assert RunConfig.model_validate(tomllib.loads(text)).train.max_steps == 50000
    capsys.readouterr()
    assert main(["config", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "max_steps = 50000" in shown and "# Upper bound on training passes." in shown
    assert main(["config", "show"]) == 0
    assert "lr_peak = 0.0001" in capsys.readouterr().out


@pytest.mark.parametrize("model_config, phrase", [
    ({"epochs": "many"}, r"modelConfig.epochs: must be a whole number"),
    ({"epochs": 3.7}, r"modelConfig.epochs: must be a whole number"),
    ({"lrPeak": [1]}, r"modelConfig.lrPeak: must be a finite number"),
    ({"modelSelectionMetric": ["f1"]}, r"modelSelectionMetric: must be a metric name"),
    ({"epochs": 0, "useLrSchedule": False}, r"modelConfig.epochs \(osdml train.max_epochs\)"),
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

    assert sorted(get_args(ModelConfig.model_fields["arch"].annotation)) == list_models()


def test_imported_tables_in_lists_round_trip_through_toml(tmp_path):
    cfg, _ = _imported(tmp_path, {"noiseAugmentationNonSeizure": True,
                                  "noiseAugmentationNonSeizurePairs": [
                                      {"type": 0, "subType": "Typing"},
                                      {"type": 0, "subType": "Sorting", "factor": 8}]})
    again = RunConfig.model_validate(tomllib.loads(cfg.to_toml()))
    assert again.data.augment.negative_noise == cfg.data.augment.negative_noise


# the dataProcessing and modelConfig of upstream's nnConfig_deep_pytorch.json (2026), whose
# validationProp of 1.0 an earlier import refused
DEEP_PYTORCH = {
    "debug": False, "randomSeed": 42,
    "osdbConfig": {"cacheDir": "/home/user/osd/osdb",
                   "osdbFiles_desc": "List of Open Seizure Database files",
                   "osdbFiles": ["osdb_3min_allSeizures.json", "osdb_3min_ndaEvents.json",
                                 "osdb_3min_falseAlarms.json"]},
    "dataFileNames": {"allDataFileJson": "allData.json", "valDataFileCsv": "valData.csv"},
    "eventFilters": {"includeUserIds": [], "excludeUserIds": [], "includeTypes": [],
                     "excludeSubTypes": ["Aura", "aura", "Check", "check", "unknown",
                                         "Unknown", "null", "Null"],
                     "excludeDataSources": ["Phone", "AndroidWear"], "includeText": [],
                     "requireHrData": False, "requireO2SatData": False,
                     "require3dData": False},
    "dataProcessing": {"addFeatureHistoryLength": 0, "window": 125, "step": 125,
                       "oversample": "none", "undersample": "none", "worker_count": None,
                       "batch_size": 1000, "stream_chunksize": 20000,
                       "stream_low_memory": False, "stream_dtype_map": None,
                       "noiseAugmentation": True, "noiseAugmentationFactor": 5,
                       "noiseAugmentationValue": 20.0, "dcNormalisation": True,
                       "dcNormalisationSurrogateThreshold": 1100.0,
                       "dcOffsetAugmentation": False, "dcOffsetAugmentationFactor": 1,
                       "dcOffsetAugmentationMax": 50.0, "phaseAugmentation": False,
                       "phaseAugmentationStep": 5, "userAugmentation": False,
                       "splitTestTrainByEvent": True, "accSdThreshold": 5.0, "testProp": 0.2,
                       "validationProp": 1.0, "features": ["acc_magnitude"],
                       "simpleMagnitudeOnly": True, "validateDatapoints": True,
                       "highPassFreq": None, "highPassOrder": 2},
    "modelConfig": {"framework": "pytorch", "modelFname": "deepEpiCnnModel_pytorch",
                    "modelClass": "user_tools.nnTraining2.deepEpiCnnModel_torch."
                                  "DeepEpiCnnModelPyTorch",
                    "sampleFreq": 25, "bufferSeconds": 30, "epochs": 100, "batchSize": 512,
                    "nLayers": 14, "convDropout": 0.05, "denseDropout": 0.15,
                    "lrFactor": 0.1, "lrPatience": 5, "lrStart": 1e-6, "lrMin": 1e-7,
                    "earlyStoppingPatience": 6, "trainingVerbosity": 1, "dims": 1,
                    "_comment_lr_schedule": "three-phase schedule", "useLrSchedule": True,
                    "useAdamW": True, "adamwBeta1": 0.9, "adamwBeta2": 0.999,
                    "weightDecay": 0.0001, "lrPeak": 0.0001, "lrMainEnd": 0.00003,
                    "warmupSteps": 2500, "mainSteps": 45000, "cooldownSteps": 2500,
                    "totalTrainingSteps": 50000, "evalEverySteps": 5000,
                    "saveBestOnBothImprovement": True, "saveBestOnFarReduction": 0.05,
                    "saveBestOnSensitivityTolerance": 0.2, "saveBestMinSensitivity": 0.60,
                    "saveBestMaxFpr": 0.03, "modelSelectionMetric": "min_fpr", "fBeta": 2.0,
                    "useBalancedBatches": True},
}


def test_upstream_deep_pytorch_with_validation_prop_1_imports_with_a_note(tmp_path, capsys):
    src = tmp_path / "nnConfig_deep_pytorch.json"
    src.write_text(json.dumps(DEEP_PYTORCH, indent=4))
    out = tmp_path / "run.toml"
    assert main(["config", "import", str(src), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "validationProp" in printed.out and "error" not in printed.err
    text = out.read_text()
    cfg = RunConfig.model_validate(tomllib.loads(text))
    # the stated behaviour: a separate validation part of the default share, test part as set
    assert cfg.data.split.val_fraction == RunConfig().data.split.val_fraction == 0.2
    assert cfg.data.split.test_fraction == 0.2
    assert cfg.train.checkpoint_metric == "min_fpr" and cfg.train.max_steps == 50000
    note = next(line for line in text.splitlines()
                if line.startswith("# differs dataProcessing.validationProp:"))
    assert "val_fraction = 0.2" in note and "leaves no training events" in note
