"""The arithmetic cost of a model: multiply-accumulates of one forward pass.

Counted by running the architecture once under ``torch.utils.flop_counter.FlopCounterMode``,
which counts 2 FLOPs per multiply-accumulate of every convolution and matrix product (the
layers that dominate; batch-norm, ReLU and pooling are a few element-wise operations per
activation and are left out, as is usual when quoting MACs). For DeepEpiCnn on a 750-sample
window: 26.1 M MACs, 52.2 MFLOP per window.

torch has no formula for the fused LSTM kernel CPUs run (``aten.mkldnn_rnn_layer``); it is
counted here as its gate products, 4 x hidden x (input + hidden) per step, direction and
batch item (CnnLstm: 6.9 M of its 13.1 M MACs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def multiply_accumulates(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of `model` on a float32 input of `input_shape`
    (e.g. ``(1, 1, 750)``), convolutions and matrix products only.

    The model is run once in eval mode under ``torch.no_grad`` on zeros; its state is unchanged.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    mapping = {torch.ops.aten.mkldnn_rnn_layer: _mkldnn_rnn_layer_flop}
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def _mkldnn_rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None,
                           **kwargs) -> int:
    """FLOPs of one LSTM layer and direction: input (T, N, I), w_ih (4H, I), w_hh (4H, H)."""
    steps, batch = input_shape[0], input_shape[1]
    gates, n_in = w_ih_shape
    return 2 * steps * batch * gates * (n_in + w_hh_shape[1])
