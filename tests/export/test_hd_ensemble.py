"""Harrell-Davis ensembles (Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406) as one model
file: the weights against scipy, the in-graph sort network, the exported .pte in the
ExecuTorch runtime against the scipy ensemble, and validate / inspect / bench / publish on it.

Members are untrained DeepEpiCnn with a fixed seed, their batch norms calibrated on generated
windows (an untrained DeepEpiCnn gives the same p for every window) and their output layer
sharpened so that p spreads over (0, 1) and across the threshold. One ensemble is exported
once for the module (two members: lowering dominates the time, about 10 s per member); the
sort network with more members and odd rounds runs in the runtime on tiny linear members.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats.mstats import hdquantiles

from osdml.cli import main
from osdml.errors import InputError
from osdml.export.checkpoint import load_pt, save_pt
from osdml.models import create_model, list_models
from osdml.models.ensemble import (
    HarrellDavisEnsemble,
    harrell_davis_weights,
    hd_combine,
    sorting_network,
)
from osdml.spec import ModelSpec

Q = 0.6
TUNED = {"threshold_pct": 50, "gate_pct": 5.0, "warn_s": 5.0, "alarm_s": 10.0, "voting": "any",
         "rule": "sensitivity_at_far", "reason": "test", "warning": None}


def _windows(k: int, seed: int, length: int = 750) -> np.ndarray:
    """(k, 1, length) float32 in g: 1 g +- sinusoids of varied amplitude and frequency."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 25.0
    amp, f = rng.uniform(0, 1.5, (k, 1)), rng.uniform(0.3, 8, (k, 1))
    level, phase = rng.uniform(0.8, 1.2, (k, 1)), rng.uniform(0, 6, (k, 1))
    x = level + amp * np.sin(2 * np.pi * f * t + phase) + 0.05 * rng.standard_normal((k, length))
    return x[:, None, :].astype(np.float32)


def _member(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model("deep_epi_cnn")
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None  # running statistics = the average over the calibration batch
    with torch.no_grad():
        model.train()
        model(torch.from_numpy(_windows(64, seed=99)))
        model.eval()
        model.fc_out.weight.mul_(8)
    return model


class _Tiny(torch.nn.Module):
    """(B, 1, L) -> (B, 2) logits: a fast stand-in member."""

    def __init__(self, seed: int, length: int = 750):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = torch.nn.Linear(length, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(2, length, generator=g) * 0.2)
            self.fc.bias.copy_(torch.randn(2, generator=g))

    def forward(self, x):
        return self.fc(x.flatten(1) - 1.0)


def _p(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)).double(), dim=1)[:, 1].numpy()


def _p_of_logits(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z[:, 1]) / np.exp(z).sum(axis=1)


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.6, 0.9, 1.0])
def test_weights_equal_scipy_hdquantiles(n, q):
    x = np.random.default_rng(n).random(n)
    w = harrell_davis_weights(n, q)
    assert w.shape == (n,) and w.dtype == np.float64
    assert (w >= 0).all() and abs(w.sum() - 1) < 1e-12
    if q == 0.0:
        assert w[0] == 1.0 and w[1:].sum() == 0
    if q == 1.0:
        assert w[-1] == 1.0 and w[:-1].sum() == 0
    if n == 1:  # scipy gives no value (masked) for fewer than 2; the estimate is the value
        assert w.tolist() == [1.0] and np.ma.getmaskarray(hdquantiles(x, prob=[q])).all()
    else:
        assert w @ np.sort(x) == pytest.approx(hdquantiles(x, prob=[q])[0], abs=1e-12)


@pytest.mark.parametrize("n, q", [(0, 0.5), (-1, 0.5), (2.5, 0.5), (True, 0.5), (3, -0.1),
                                  (3, 1.1), (3, float("nan")), (3, "0.5"), (3, None)])
def test_bad_weight_arguments_raise(n, q):
    with pytest.raises(ValueError):
        harrell_davis_weights(n, q)


def test_hd_combine_is_scipy_per_window_and_checks_its_input():
    p = np.random.default_rng(0).random((5, 7))
    expected = np.asarray(hdquantiles(p, prob=[0.9], axis=0)).reshape(-1)
    got = hd_combine(p, 0.9)
    assert got.shape == (7,) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_array_equal(hd_combine(p[:1], 0.3), p[0])
    for bad in (p[0], p[None], np.array([[0.1, np.nan]])):
        with pytest.raises(ValueError):
            hd_combine(bad, 0.5)


# --------------------------------------------------------------------------- in the graph


def test_the_sort_network_sorts_every_column():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 4, 7, 10):
        values = torch.rand(n, 50, generator=g)
        values[:, 0] = 0.5  # ties
        got = torch.stack(sorting_network(list(values)))
        assert torch.equal(got, torch.sort(values, dim=0).values)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.6, 0.9, 1.0])
def test_the_torch_ensemble_equals_hd_combine(n, q):
    members = [_Tiny(seed) for seed in range(n)]
    ens = HarrellDavisEnsemble(members, q).eval()
    x = _windows(32, seed=n)
    member_p = np.stack([_p(m, x) for m in members])
    p_ref = np.clip(hd_combine(member_p, q), 1e-6, 1 - 1e-6)
    with torch.no_grad():
        logits = ens(torch.from_numpy(x)).numpy()
    assert logits.shape == (32, 2) and logits.dtype == np.float32 and np.isfinite(logits).all()
    np.testing.assert_allclose(_p_of_logits(logits), p_ref, atol=1e-6)
    assert ens.weights.dtype == torch.float32 and list(ens.state_dict()) == [
        f"members.{i}.fc.{k}" for i in range(n) for k in ("weight", "bias")]


def test_a_single_member_ensemble_is_its_member():
    member = _member(0)
    x = _windows(24, seed=3)
    p_member = _p(member, x)
    for q in (0.0, 0.5, 0.9):
        ens = HarrellDavisEnsemble([member], q).eval()
        assert ens.weights.tolist() == [1.0]
        np.testing.assert_allclose(_p(ens, x), np.clip(p_member, 1e-6, 1 - 1e-6), atol=1e-6)

    from osdml.export.validate import hd_reference

    p_ref, member_p = hd_reference(HarrellDavisEnsemble([member], 0.5), x)
    np.testing.assert_allclose(p_ref, np.clip(p_member, 1e-6, 1 - 1e-6), atol=1e-6)
    assert member_p.shape == (1, 24)


def test_five_tiny_members_sort_and_combine_in_the_executorch_runtime(tmp_path):
    """The graph has no aten.sort (no kernel in ExecuTorch: a program that sorts fails to load
    with OperatorMissing); its minimum / maximum network, odd rounds included, loads and runs
    on the portable kernels (lowered in 2 s; XNNPACK, where minimum and maximum run in the
    delegate, is the module's two-member ensemble)."""
    from osdml.export.pte import PteRunner, export_pte

    members = [_Tiny(seed) for seed in range(5)]
    ens = HarrellDavisEnsemble(members, 0.9).eval()
    exported = torch.export.export(ens, (torch.zeros(1, 1, 750),))
    ops = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert not any("sort" in op for op in ops)
    assert any("minimum" in op for op in ops) and any("maximum" in op for op in ops)
    spec = ModelSpec(arch="tiny", arch_kwargs={})
    export_pte(ens, spec, tmp_path / "tiny.pte", sidecar=False, backend="portable")
    runner = PteRunner(tmp_path / "tiny.pte")
    x = _windows(16, seed=4)
    p = _p_of_logits(np.concatenate([runner(x[i:i + 1]) for i in range(len(x))]))
    member_p = np.stack([_p(m, x) for m in members])
    np.testing.assert_allclose(p, np.clip(hd_combine(member_p, 0.9), 1e-6, 1 - 1e-6),
                               atol=1e-5)


def test_a_program_that_sorts_does_not_load_and_says_why(tmp_path):
    """Why the network: the same ensemble with torch.sort exports and lowers, then the runtime
    refuses it (OperatorMissing), named in one line."""
    from osdml.export.pte import PteRunner, export_pte

    class Sorting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.members = torch.nn.ModuleList([_Tiny(0), _Tiny(1)])

        def forward(self, x):
            p = torch.stack([torch.softmax(m(x), dim=1)[:, 1] for m in self.members], dim=1)
            p = torch.sort(p, dim=1).values[:, 1].clamp(1e-6, 1 - 1e-6)
            return torch.stack([torch.log(1 - p), torch.log(p)], dim=1)

    path = tmp_path / "sorting.pte"
    export_pte(Sorting().eval(), ModelSpec(arch="sorting", arch_kwargs={}), path,
               sidecar=False, backend="portable")
    with pytest.raises(InputError, match="OperatorMissing, an operator in the program has no "
                                         "kernel here"):
        PteRunner(path)


# --------------------------------------------------------------------------- registry


def test_the_registry_builds_an_ensemble_from_its_spec():
    assert "hd_ensemble" not in list_models()  # not trainable from a configuration
    assert "hd_ensemble" in list_models(composite=True)
    member = {"arch": "deep_epi_cnn", "arch_kwargs": {"input_length": 750, "num_classes": 2}}
    spec = ModelSpec(arch="hd_ensemble", arch_kwargs={"members": [member, member],
                                                      "quantile": Q, "input_length": 750,
                                                      "num_classes": 2})
    model = spec.build()
    assert isinstance(model, HarrellDavisEnsemble) and len(model.members) == 2
    assert model.quantile == Q
    assert {k.split(".")[0] for k in model.state_dict()} == {"members"}
    with pytest.raises(ValueError, match="2 classes"):
        create_model("hd_ensemble", members=[member], quantile=Q, num_classes=3)
    with pytest.raises(ValueError, match="takes 500 samples"):
        create_model("hd_ensemble", members=[{"arch": "deep_epi_cnn",
                                              "arch_kwargs": {"input_length": 500}}], quantile=Q)
    with pytest.raises(ValueError, match="member 0"):
        create_model("hd_ensemble", members=["deep_epi_cnn"], quantile=Q)
    with pytest.raises(ValueError, match="quantile"):
        create_model("hd_ensemble", members=[member], quantile=1.5)


# --------------------------------------------------------------------------- write_ensemble


@pytest.fixture(scope="module")
def ensemble_dir(synth_dir, tmp_path_factory):
    """DIR/members/<name>/ as osdml run folders (config.toml naming the synthetic data,
    split.json, model.pt), and DIR/ensemble.{pt,pte,pte.json,ptl} written once from them."""
    from osdml.config import load_config
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.split import split_events, split_manifest, write_manifest
    from osdml.export.ensemble import write_ensemble

    root = tmp_path_factory.mktemp("ensemble")
    cfg = load_config(None, {"data": {"files": [str(synth_dir)]}})
    streams = load_streams([synth_dir], cache=False)
    selection = select_events(streams, cfg.data.selection)
    (split,) = split_events(streams, selection, cfg.data.split)
    paths = []
    for seed, name in enumerate(("fold0", "fold1")):
        run = root / "members" / name
        run.mkdir(parents=True)
        (run / "config.toml").write_text(cfg.to_toml())
        write_manifest(run / "split.json", split_manifest(streams, selection, [split],
                                                          cfg.data.split))
        paths.append(save_pt(run / "model.pt", _member(seed), ModelSpec().stamped()))
    result = write_ensemble(paths, Q, root, threshold=0.5, app_settings=TUNED,
                            training={"note": "test"}, windows=_windows(48, seed=1),
                            windows_source="48 generated windows")
    return root, result, paths


def test_write_ensemble_writes_every_format_and_records_parity(ensemble_dir):
    root, result, paths = ensemble_dir
    assert result.missing == {}
    assert set(result.artefacts) == {"pt", "pte", "ptl"}
    for fmt, path in result.artefacts.items():
        assert path == root / f"ensemble.{fmt}" and path.is_file()
    assert not list(root.glob(".*.tmp"))
    assert result.checked and result.passed
    assert [c.format for c in result.parity] == ["pt", "pte", "ptl"]
    for c in result.parity:
        assert c.max_prob_diff <= 5e-5 and c.decision_agreement == 1.0 and c.atol == 5e-5
        assert "hdquantiles" in c.reference
    side = json.loads((root / "ensemble.pte.json").read_text())
    assert side["validation"]["passed"] is True
    assert side["validation"]["source"] == "48 generated windows"
    assert side["spec"]["arch"] == "hd_ensemble"
    training = result.spec.training
    assert training["quantile"] == Q and training["note"] == "test"
    assert training["weights"] == pytest.approx(harrell_davis_weights(2, Q).tolist())
    assert [m["name"] for m in training["members"]] == ["fold0", "fold1"]
    assert training["members"][0]["file"] == "members/fold0/model.pt"
    assert result.spec.app_settings == TUNED and result.spec.threshold == 0.5
    # ensemble.pt: the spec rebuilds the ensemble and the state dict restores the members
    model, spec, _ = load_pt(root / "ensemble.pt")
    assert isinstance(model, HarrellDavisEnsemble) and spec == result.spec
    member, _, _ = load_pt(paths[1])
    for k, v in member.state_dict().items():
        assert torch.equal(model.state_dict()[f"members.1.{k}"], v)


def test_the_pte_in_the_executorch_runtime_equals_the_scipy_ensemble(ensemble_dir):
    from osdml.export.pte import PteRunner

    root, _, paths = ensemble_dir
    runner = PteRunner(root / "ensemble.pte")  # it loads: no operator without a kernel
    assert json.loads(runner.constant("spec_json"))["arch_kwargs"]["quantile"] == Q
    x = _windows(64, seed=11)  # not the windows write_ensemble checked on
    p = _p_of_logits(np.concatenate([runner(x[i:i + 1]) for i in range(len(x))]))
    member_p = np.stack([_p(load_pt(path)[0], x) for path in paths])
    p_ref = np.asarray(hdquantiles(member_p, prob=[Q], axis=0)).reshape(-1)
    assert (p_ref > 0.5).any() and (p_ref <= 0.5).any()  # decisions on both sides
    assert np.abs(p - p_ref).max() <= 5e-5
    np.testing.assert_array_equal(p > 0.5, p_ref > 0.5)


def test_write_ensemble_refuses_members_that_do_not_fit(ensemble_dir, tmp_path):
    from osdml.export.ensemble import write_ensemble

    _, _, paths = ensemble_dir
    short = save_pt(tmp_path / "short" / "model.pt",
                    create_model("deep_epi_cnn", input_length=500),
                    ModelSpec(arch_kwargs={"input_length": 500}, input_shape=(1, 1, 500),
                              window_samples=500))
    with pytest.raises(InputError, match="input_shape differ"):
        write_ensemble([paths[0], short], Q, tmp_path / "out")
    with pytest.raises(InputError, match="no member"):
        write_ensemble([], Q, tmp_path / "out")
    with pytest.raises(InputError, match=r"quantile must be in \[0, 1\]"):
        write_ensemble(paths, 1.5, tmp_path / "out")
    with pytest.raises(InputError, match="itself an ensemble"):
        write_ensemble([ensemble_dir[0] / "ensemble.pt"], Q, tmp_path / "out")
    with pytest.raises(InputError, match="windows of shape"):
        write_ensemble(paths[:1], Q, tmp_path / "out", windows=_windows(2, 0, 500))
    assert not (tmp_path / "out").exists()  # refused before anything was written


# --------------------------------------------------------------------------- commands


def test_validate_an_ensemble_pte_on_its_members_windows(ensemble_dir, capsys):
    root, _, _ = ensemble_dir
    code, out, err = _run(capsys, "validate", root / "ensemble.pte", root / "ensemble.ptl",
                          "--windows", "16", "--random", "4", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["format"] for r in results] == ["pte", "ptl"]
    for r in results:
        assert r["passed"] and r["windows"] == 20 and r["max_prob_diff"] <= 5e-5
        assert "hdquantiles" in r["reference"] and "a member of the ensemble" in r["summary"]


def test_validate_against_another_ensemble_fails(ensemble_dir, synth_dir, tmp_path, capsys):
    root, _, _ = ensemble_dir
    model, spec, _ = load_pt(root / "ensemble.pt")
    other_spec = spec.model_copy(update={"arch_kwargs": {**spec.arch_kwargs, "quantile": 0.1}})
    other = save_pt(tmp_path / "ensemble.pt", model, other_spec)  # same members, q = 0.1
    code, out, err = _run(capsys, "validate", root / "ensemble.pte", "--reference", other,
                          "--data", synth_dir, "--windows", "16")
    assert code == 1
    assert err.count("\n") == 1 and "ensemble.pte: max p difference" in err
    assert "(ensemble p tolerance 5e-05)" in err


def test_convert_checks_an_ensemble_on_p(ensemble_dir, tmp_path):
    from osdml.export.convert import ConvertOptions, convert_file

    root, _, _ = ensemble_dir
    result = convert_file(root / "ensemble.pt", tmp_path / "again.ptl", ConvertOptions(to="ptl"))
    assert result.status == "converted" and result.check["passed"]
    assert result.check["max_prob_diff"] <= 5e-5 and "hdquantiles" in result.check["summary"]


def test_inspect_and_bench_read_the_ensemble(ensemble_dir):
    from osdml.export.bench import measure
    from osdml.export.inspect import describe

    root, _, _ = ensemble_dir
    for fmt in ("pte", "pt"):
        info = describe(root / f"ensemble.{fmt}")
        assert info["spec"]["arch"] == "hd_ensemble"
        assert info["forward"]["inputs"][0]["shape"] == [1, 1, 750]
        assert info["forward"]["outputs"][0]["shape"] == [1, 2]
    threads = torch.get_num_threads()
    try:  # what `osdml bench` runs in its child process, here in this one
        for fmt, label in (("pte", "pte xnnpack fp32"), ("pt", "pt (eager)")):
            r = measure(root / f"ensemble.{fmt}", runs=3, threads=1, warmup=1, profile=False)
            assert r["format"] == label and r["p50_ms"] > 0
    finally:
        torch.set_num_threads(threads)


def test_publish_accepts_the_ensemble(ensemble_dir, tmp_path):
    from osdml.app import index as ix

    root, _, _ = ensemble_dir
    result = ix.publish(root / "ensemble.pte", tmp_path / "index.json")
    entry = result.entry
    assert entry["fname"] == "ensemble.pte" and entry["input_size"] == 750
    assert entry["framework"] == "pytorch" and entry["seizure_probability_threshold_pct"] == 50
    assert entry["thresholds_tuned"] is True
    assert "Harrell-Davis ensemble (quantile 0.6) of 2 deep_epi_cnn" in entry["description"]
    assert not any("validation" in w for w in result.warnings)
    assert not [f for f in ix.check_index(tmp_path / "index.json") if f.severity in ix.FAILING]


def test_int8_of_an_ensemble_is_refused_in_one_line(ensemble_dir, synth_dir, tmp_path):
    from osdml.export.convert import ConvertOptions, convert_file

    root, _, _ = ensemble_dir
    opts = ConvertOptions(to="pte", quantize="int8", calibration=[str(synth_dir)])
    with pytest.raises(InputError, match="int8 of an ensemble is not supported"):
        convert_file(root / "ensemble.pt", tmp_path / "e_int8.pte", opts)
    assert not (tmp_path / "e_int8.pte").exists()
