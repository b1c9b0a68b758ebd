"""DeepEpiCnn and the model registry (parametrized over every registered model)."""

from __future__ import annotations

import pytest
import torch

from osdml.models import create_model, list_models
from osdml.models.deep_epi_cnn import DeepEpiCnn, conv_output_length, multiply_accumulates


def test_parameter_count_matches_the_paper_architecture():
    model = create_model("deep_epi_cnn", input_length=750, num_classes=2)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 97_362


def test_layers_follow_the_specification():
    model = create_model("deep_epi_cnn", conv_dropout=0.0)
    convs = [m for m in model.conv_stack if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 14
    assert [c.out_channels for c in convs] == [16] + [32] * 11 + [64, 64]
    assert [c.stride[0] for c in convs] == [1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert all(c.kernel_size == (5,) and c.padding == (0,) for c in convs)
    assert conv_output_length(750) == 157
    assert multiply_accumulates(750) > 20_000_000


def test_conv_dropout_adds_a_fourth_module_per_block():
    plain = create_model("deep_epi_cnn", conv_dropout=0.0).state_dict()
    dropout = create_model("deep_epi_cnn", conv_dropout=0.1).state_dict()
    assert "conv_stack.3.weight" in plain and "conv_stack.4.weight" in dropout
    assert {k for k in plain if not k.startswith("conv_stack")} == \
        {k for k in dropout if not k.startswith("conv_stack")}


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_trains_and_exports(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(4, 1, 750) * 0.1 + 1.0
    logits = model(x)
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing
    exported = torch.export.export(model.eval(), (torch.zeros(1, 1, 750),))
    assert exported.module()(x[:1]).shape == (1, 2)


def test_forward_takes_channel_first_only():
    model = create_model("deep_epi_cnn").eval()
    with pytest.raises(RuntimeError):
        model(torch.zeros(1, 750, 1))  # channel-last is not silently permuted
    with pytest.raises(RuntimeError):
        model(torch.zeros(1, 750))


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 125 samples"):
        DeepEpiCnn(input_length=100)
    with pytest.raises(KeyError, match="known models: .*deep_epi_cnn"):
        create_model("resnet50")
    assert create_model("deep_epi_cnn", dense_dropout=None).dropout1.p == 0.025  # None: default


@pytest.mark.parametrize("length, classes", [(750, 2), (500, 3)])
def test_the_analytic_mac_count_matches_torchs_flop_counter(length, classes):
    from osdml.models.cost import multiply_accumulates as counted

    model = create_model("deep_epi_cnn", input_length=length, num_classes=classes)
    assert multiply_accumulates(length, classes) == counted(model, (1, 1, length))
    assert multiply_accumulates(750) == 26_105_664  # 52.2 MFLOP per window
    assert model.training  # counting leaves the model as it was
