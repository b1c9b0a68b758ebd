"""CnnLstm (nnTraining2's cnnLstmModel_torch.py): shapes, registry, upstream weights, export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from osdml.errors import InputError
from osdml.models import create_model, list_models
from osdml.models.cnn_lstm import CnnLstm, multiply_accumulates

# a small CnnLstm (2 steps of 17 samples, 8 features, LSTM 2 x 8) keeps the export tests fast
SMALL = {"input_length": 34, "cnn_window_samples": 17, "feature_dim": 8, "lstm_hidden": 8}

# the state-dict names and shapes of nnTraining2's CnnLstm (cnnLstmModel_torch.py), 3 channels
UPSTREAM = {
    **{f"cnn_extractor.conv{i}.weight": (o, c, 5)
       for i, (c, o) in enumerate([(3, 16), (16, 32), (32, 32), (32, 64)], start=1)},
    **{f"cnn_extractor.conv{i}.bias": (o,) for i, o in enumerate([16, 32, 32, 64], start=1)},
    **{f"cnn_extractor.bn{i}.{p}": (o,) for i, o in enumerate([16, 32, 32, 64], start=1)
       for p in ("weight", "bias", "running_mean", "running_var")},
    "cnn_extractor.fc_feature.weight": (64, 64), "cnn_extractor.fc_feature.bias": (64,),
    "lstm.weight_ih_l0": (512, 64), "lstm.weight_hh_l0": (512, 128),
    "lstm.bias_ih_l0": (512,), "lstm.bias_hh_l0": (512,),
    "lstm.weight_ih_l1": (512, 128), "lstm.weight_hh_l1": (512, 128),
    "lstm.bias_ih_l1": (512,), "lstm.bias_hh_l1": (512,),
    **{f"fc{i}.{p}": s for i, (a, b) in enumerate([(128, 128), (128, 64), (64, 32)], start=1)
       for p, s in (("weight", (b, a)), ("bias", (b,)))},
    **{f"bn{i}.{p}": (b,) for i, b in enumerate([128, 64, 32], start=1)
       for p in ("weight", "bias", "running_mean", "running_var")},
    "fc_out.weight": (2, 32), "fc_out.bias": (2,),
}


def _upstream_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(s, generator=g) * 0.2 for k, s in UPSTREAM.items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = state[k].abs() + 0.5
    return state


def _reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Upstream's forward written out with functionals: channel-first (b, C, 750) is permuted
    to (b, 750, C), cut into (b*30, 25, C) and permuted back to (b*30, C, 25)."""
    b, c, _ = x.shape
    h = x.permute(0, 2, 1).reshape(b * 30, 25, c).permute(0, 2, 1)
    for i in range(1, 5):
        p = f"cnn_extractor.conv{i}", f"cnn_extractor.bn{i}"
        h = F.conv1d(h, state[f"{p[0]}.weight"], state[f"{p[0]}.bias"])
        h = F.relu(F.batch_norm(h, state[f"{p[1]}.running_mean"], state[f"{p[1]}.running_var"],
                                state[f"{p[1]}.weight"], state[f"{p[1]}.bias"]))
    h = F.linear(h.mean(-1), state["cnn_extractor.fc_feature.weight"],
                 state["cnn_extractor.fc_feature.bias"]).reshape(b, 30, 64)
    lstm = torch.nn.LSTM(64, 128, num_layers=2, batch_first=True).eval()
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    h = lstm(h)[0][:, -1]
    for i in range(1, 4):
        h = F.linear(h, state[f"fc{i}.weight"], state[f"fc{i}.bias"])
        h = F.relu(F.batch_norm(h, state[f"bn{i}.running_mean"], state[f"bn{i}.running_var"],
                                state[f"bn{i}.weight"], state[f"bn{i}.bias"]))
    return F.linear(h, state["fc_out.weight"], state["fc_out.bias"])


@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_for_one_and_three_channels(channels):
    torch.manual_seed(0)
    model = create_model("cnn_lstm", in_channels=channels)
    assert model.steps == 30 and model.cnn_extractor.conv1.in_channels == channels
    logits = model(torch.randn(4, channels, 750))
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match=f"takes \\(N, {channels}, 750\\) windows"):
        model(torch.zeros(4, 750, channels))  # channel-last is not silently cut up


def test_registered_and_counted():
    assert "cnn_lstm" in list_models()
    model = create_model("cnn_lstm")
    assert sum(p.numel() for p in model.parameters()) == 281_378
    assert sum(p.numel() for p in model.lstm.parameters()) == 231_424
    assert model.lstm.num_layers == 2 and model.lstm.dropout == 0.2
    assert create_model("cnn_lstm", lstm_layers=1).lstm.dropout == 0.0


@pytest.mark.parametrize("kwargs", [{}, {"in_channels": 3, "num_classes": 3, "lstm_layers": 1}])
def test_the_analytic_mac_count_matches_the_counter(kwargs):
    from osdml.models.cost import multiply_accumulates as counted

    model = create_model("cnn_lstm", **kwargs)
    assert multiply_accumulates(**kwargs) == counted(
        model, (1, kwargs.get("in_channels", 1), 750))
    assert multiply_accumulates() == 13_148_448  # 6.88 M of them in the LSTM


def test_upstream_state_dict_loads_strictly_and_gives_upstreams_logits():
    state = _upstream_state()
    model = create_model("cnn_lstm", in_channels=3).eval()
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 750, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(x), _reference(state, x), atol=1e-5)


def test_convert_recognises_an_upstream_checkpoint(tmp_path):
    from osdml.export.source import load_source

    path = tmp_path / "cnnLstmModel_pytorch_best.pth"
    torch.save({"model_state_dict": _upstream_state(), "config": {"modelConfig": {
        "sampleFreq": 25, "cnnWindowSeconds": 1.0, "lstmWindowSeconds": 30.0}}}, path)
    src = load_source(path)
    assert src.spec.arch == "cnn_lstm" and src.spec.input_shape == (1, 3, 750)
    assert src.spec.arch_kwargs["lstm_hidden"] == 128 and src.spec.arch_kwargs["lstm_layers"] == 2
    assert src.notes[0].startswith("inferred cnn_lstm: 2 classes, 3 input channel(s)")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # nn.LSTM's own shape checks
def test_export_round_trip_pte_and_ptl(tmp_path):
    pytest.importorskip("executorch")
    from osdml.export.pte import PteRunner, export_pte
    from osdml.export.ptl import export_ptl
    from osdml.spec import ModelSpec

    torch.manual_seed(0)
    model = create_model("cnn_lstm", in_channels=3, **SMALL).eval()
    spec = ModelSpec(arch="cnn_lstm", arch_kwargs={**SMALL, "in_channels": 3},
                     input_shape=(1, 3, 34), window_samples=34)
    x = torch.randn(1, 3, 34)
    with torch.no_grad():
        eager = model(x)
    info = export_pte(model, spec, tmp_path / "m.pte", sidecar=False)
    # the LSTM is all in the XNNPACK delegate: only the global pool's unsqueeze / squeeze
    # stay on portable kernels, as in DeepEpiCnn's program
    assert info.delegated_ops == 3
    assert set(info.portable_ops) <= {"unsqueeze_copy.out", "squeeze_copy.dims_out"}
    assert torch.allclose(torch.from_numpy(PteRunner(info.path)(x.numpy())), eager, atol=1e-5)
    export_ptl(model, spec, tmp_path / "m.ptl", optimize=False)
    lite = torch.jit.load(str(tmp_path / "m.ptl"))
    assert torch.allclose(lite(x), eager, atol=1e-5)


def test_bad_window_lengths():
    with pytest.raises(ValueError, match="not a whole number of 25-sample CNN windows"):
        CnnLstm(input_length=760)
    with pytest.raises(ValueError, match="at least 17"):
        CnnLstm(input_length=750, cnn_window_samples=15)


def test_a_window_that_is_not_whole_cnn_windows_is_an_input_error():
    from osdml.config import RunConfig
    from osdml.pipeline import _check_model

    cfg = RunConfig.model_validate({"model": {"arch": "cnn_lstm"},
                                    "data": {"windows": {"window_s": 30.4}}})
    with pytest.raises(InputError, match="window_s=30.4 to be a whole number of "
                                         "model.cnn_window_s=1"):
        _check_model(cfg, 760)
    cfg = RunConfig.model_validate({"model": {"arch": "cnn_lstm", "cnn_window_s": 0.9}})
    with pytest.raises(InputError, match="cnn_window_s=0.9 s at 25 Hz is 22.5 samples"):
        _check_model(cfg, 750)
    # options of the other architecture are not passed to it
    assert "lstm_hidden" not in RunConfig().model.arch_options(25.0)

