"""CnnLstm: a 1-s CNN feature extractor followed by a stacked LSTM over the window.

Source: the OpenSeizureDetector nnTraining2 pipeline, ``user_tools/nnTraining2/
cnnLstmModel_torch.py`` (class ``CnnLstm``) in github.com/OpenSeizureDetector/
OpenSeizureDatabase, described in its ``CNN_LSTM_README.md`` and
``reports/cnn_lstm_sep2026/lstm_description.md``. Re-implemented here; module names
(``cnn_extractor.conv1`` ... ``cnn_extractor.fc_feature``, ``lstm``, ``fc1``, ``bn1`` ...
``fc_out``) match that file so its state dicts load with ``strict=True``.

Architecture, input (N, C, L) float32 acceleration in g (C = 1 magnitude, or 3 for x/y/z), L a
whole number of CNN windows of W samples (T = L / W steps; 750 = 30 x 25 at 25 Hz):

- the window is cut into T non-overlapping sub-windows -> (N*T, C, W);
- CNN on each sub-window: 4 Conv1d layers, kernel 5, stride 1, no padding; filters 16, 32, 32,
  64; each followed by BatchNorm1d and ReLU, and by Dropout when ``conv_dropout`` > 0 (W = 25:
  lengths 21, 17, 13, 9); global average pooling -> (N*T, 64); Linear 64 -> ``feature_dim``;
- batch-first LSTM over the T feature vectors: ``lstm_layers`` layers of ``lstm_hidden``
  units, Dropout ``lstm_dropout`` between layers (training only); the output of the last step
  -> (N, ``lstm_hidden``);
- dense ``lstm_hidden`` -> 128 -> 64 -> 32, each with BatchNorm1d, ReLU and Dropout
  ``dense_dropout``; ``fc_out`` 32 -> classes; logits out, (N, classes).

For L = 750, W = 25, one channel and 2 classes: 281,378 trainable parameters (82 % of them in
the LSTM) and 13.1 M multiply-accumulates per window (DeepEpiCnn: 97,362 and 26.1 M).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from osdml.models.registry import register_model

FILTERS = (16, 32, 32, 64)
KERNEL = 5
HEAD = (128, 64, 32)
MIN_CNN_WINDOW = len(FILTERS) * (KERNEL - 1) + 1  # 17 samples: one left after the convolutions


class CnnFeatureExtractor(nn.Module):
    """The per-sub-window CNN: (M, C, W) float32 -> (M, ``feature_dim``) features.

    Parameters
    ----------
    in_channels : int, default=1
    feature_dim : int, default=64
        Size of the projected feature vector.
    conv_dropout : float, default=0.0
        Dropout after each convolution block; 0 leaves an Identity in its place.
    """

    def __init__(self, in_channels: int = 1, feature_dim: int = 64, conv_dropout: float = 0.0):
        super().__init__()
        c_in = in_channels
        for i, c_out in enumerate(FILTERS, start=1):
            setattr(self, f"conv{i}", nn.Conv1d(c_in, c_out, KERNEL))
            setattr(self, f"bn{i}", nn.BatchNorm1d(c_out))
            setattr(self, f"relu{i}", nn.ReLU())
            setattr(self, f"drop{i}", nn.Dropout(conv_dropout) if conv_dropout > 0
                    else nn.Identity())
            c_in = c_out
        self.global_pool = nn.AdaptiveAvgPool1d(1)
        self.fc_feature = nn.Linear(FILTERS[-1], feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(M, C, W) -> (M, feature_dim)."""
        for i in range(1, len(FILTERS) + 1):
            block = (getattr(self, f"{n}{i}") for n in ("conv", "bn", "relu", "drop"))
            for layer in block:
                x = layer(x)
        return self.fc_feature(self.global_pool(x).flatten(1))


class CnnLstm(nn.Module):
    """The CNN-LSTM classifier of OpenSeizureDetector's nnTraining2 (``cnnLstmModel_torch.py``).

    Parameters
    ----------
    input_length : int, default=750
        Samples per window (30 s at 25 Hz); a whole number of `cnn_window_samples`.
    num_classes : int, default=2
    in_channels : int, default=1
        1 for acceleration magnitude, 3 for x/y/z.
    conv_dropout : float, default=0.0
        Dropout after each convolution block of the CNN.
    dense_dropout : float, default=0.025
        Dropout after each of the three hidden dense layers.
    cnn_window_samples : int, default=25
        Samples per CNN sub-window (1 s at 25 Hz); at least 17.
    feature_dim : int, default=64
        CNN feature vector size (the LSTM's input size).
    lstm_hidden : int, default=128
        LSTM hidden units per layer.
    lstm_layers : int, default=2
    lstm_dropout : float, default=0.2
        Dropout between LSTM layers (none with one layer).

    Raises
    ------
    ValueError
        If `input_length` is not a whole number (at least 1) of `cnn_window_samples`, or
        `cnn_window_samples` is too short for the four convolutions.
    """

    def __init__(self, input_length: int = 750, num_classes: int = 2, in_channels: int = 1,
                 conv_dropout: float = 0.0, dense_dropout: float = 0.025,
                 cnn_window_samples: int = 25, feature_dim: int = 64, lstm_hidden: int = 128,
                 lstm_layers: int = 2, lstm_dropout: float = 0.2):
        super().__init__()
        if cnn_window_samples < MIN_CNN_WINDOW:
            raise ValueError(f"a CNN window of {cnn_window_samples} samples is too short for "
                             f"CnnLstm's 4 convolutions; need at least {MIN_CNN_WINDOW}")
        if input_length < cnn_window_samples or input_length % cnn_window_samples:
            raise ValueError(f"{input_length} samples is not a whole number of "
                             f"{cnn_window_samples}-sample CNN windows")
        self.input_length = input_length
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.cnn_window_samples = cnn_window_samples
        self.steps = input_length // cnn_window_samples
        self.feature_dim = feature_dim
        self.cnn_extractor = CnnFeatureExtractor(in_channels, feature_dim, conv_dropout)
        self.lstm = nn.LSTM(feature_dim, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                            dropout=lstm_dropout if lstm_layers > 1 else 0.0)
        sizes = (lstm_hidden, *HEAD)
        for i, (a, b) in enumerate(pairwise(sizes), start=1):
            setattr(self, f"fc{i}", nn.Linear(a, b))
            setattr(self, f"bn{i}", nn.BatchNorm1d(b))
            setattr(self, f"relu{i}", nn.ReLU())
            setattr(self, f"dropout{i}", nn.Dropout(dense_dropout) if dense_dropout > 0
                    else nn.Identity())
        self.fc_out = nn.Linear(HEAD[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, L) float32 in g -> (N, lstm_hidden): the LSTM output at the last step.

        Raises
        ------
        ValueError
            If `x` is not (N, in_channels, input_length): a channel-last window would
            otherwise be cut into sub-windows silently.
        """
        if not torch.jit.is_tracing() and (x.dim() != 3 or tuple(x.shape[1:]) != (
                self.in_channels, self.input_length)):
            raise ValueError(f"CnnLstm takes (N, {self.in_channels}, {self.input_length}) "
                             f"windows, got {tuple(x.shape)}")
        n = x.shape[0]
        c, t, w = self.in_channels, self.steps, self.cnn_window_samples
        # (N, C, T, W) -> (N, T, C, W) -> (N*T, C, W): sub-window k of every channel together
        x = x.reshape(n, c, t, w).permute(0, 2, 1, 3).reshape(n * t, c, w)
        features = self.cnn_extractor(x).reshape(n, t, self.feature_dim)
        if torch.compiler.is_exporting():
            return self._lstm_unrolled(features)
        out, _ = self.lstm(features)  # (N, T, lstm_hidden)
        return out[:, -1, :]

    def _lstm_unrolled(self, x: torch.Tensor) -> torch.Tensor:
        """``self.lstm``'s last output for (N, T, feature_dim) -> (N, lstm_hidden), written
        out step by step with the same weights (eval mode: no dropout between layers).

        Used when exporting (``torch.export``): the decomposition torch gives ``nn.LSTM``
        splits the gates with ``split_with_sizes`` and squeezes each step, operators XNNPACK
        does not take, so the program broke into 66 delegate calls with 133 portable ones
        between them. Here every operator is one XNNPACK lowers (linear, static slices,
        views, cat, sigmoid, tanh, mul, add), the first step needs no zero state, and the
        whole model becomes one delegate call.
        """
        lstm, n, t = self.lstm, x.shape[0], x.shape[1]
        h_size = lstm.hidden_size
        h = x
        for layer in range(lstm.num_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(lstm, f"{w}_l{layer}") for w in (
                "weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            # the input's share of the gates, every step at once: (N, T, 4H)
            gates_in = (nn.functional.linear(x.reshape(n * t, -1), w_ih, b_ih)
                        + b_hh).reshape(n, t, 4 * h_size)
            c, steps = None, []
            for s in range(t):
                gates = gates_in[:, s:s + 1, :].reshape(n, 4 * h_size)
                if c is not None:
                    gates = gates + nn.functional.linear(h, w_hh)
                i, f, g, o = (gates[:, k * h_size:(k + 1) * h_size] for k in range(4))
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = i * g if c is None else f * c + i * g
                h = o * torch.tanh(c)
                steps.append(h.reshape(n, 1, h_size))
            if layer < lstm.num_layers - 1:
                x = torch.cat(steps, dim=1)  # (N, T, H): the next layer's input
        return h

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """(N, lstm_hidden) -> (N, num_classes) logits."""
        for i in range(1, len(HEAD) + 1):
            for name in ("fc", "bn", "relu", "dropout"):
                x = getattr(self, f"{name}{i}")(x)
        return self.fc_out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for windows (N, in_channels, input_length); the layout is
        fixed, never inferred."""
        return self.forward_head(self.forward_features(x))


def multiply_accumulates(input_length: int = 750, num_classes: int = 2, in_channels: int = 1,
                         cnn_window_samples: int = 25, feature_dim: int = 64,
                         lstm_hidden: int = 128, lstm_layers: int = 2) -> int:
    """Multiply-accumulate operations of one forward pass on one window: convolutions, the
    feature projection, the LSTM's gate products (4 gates x hidden x (input + hidden) per step
    and layer) and the dense layers; batch norm, activations, gate element-wise products and
    pooling not counted."""
    steps = input_length // cnn_window_samples
    cnn, n, c_in = 0, cnn_window_samples, in_channels
    for c_out in FILTERS:
        n -= KERNEL - 1
        cnn += n * c_out * c_in * KERNEL
        c_in = c_out
    cnn += FILTERS[-1] * feature_dim
    lstm = sum(4 * lstm_hidden * ((feature_dim if i == 0 else lstm_hidden) + lstm_hidden)
               for i in range(lstm_layers))
    sizes = (lstm_hidden, *HEAD, num_classes)
    dense = sum(a * b for a, b in pairwise(sizes))
    return steps * (cnn + lstm) + dense


@register_model
def cnn_lstm(input_length: int = 750, num_classes: int = 2, in_channels: int = 1,
             conv_dropout: float = 0.0, dense_dropout: float = 0.025,
             cnn_window_samples: int = 25, feature_dim: int = 64, lstm_hidden: int = 128,
             lstm_layers: int = 2, lstm_dropout: float = 0.2) -> CnnLstm:
    """CnnLstm as in OpenSeizureDetector nnTraining2 ``cnnLstmModel_torch.py``."""
    return CnnLstm(input_length=input_length, num_classes=num_classes, in_channels=in_channels,
                   conv_dropout=conv_dropout, dense_dropout=dense_dropout,
                   cnn_window_samples=cnn_window_samples, feature_dim=feature_dim,
                   lstm_hidden=lstm_hidden, lstm_layers=lstm_layers, lstm_dropout=lstm_dropout)
