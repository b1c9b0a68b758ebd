"""DeepEpiCnn: the 14-layer 1-D CNN for generalised convulsive seizure detection.

Source: Spahr A., Bernini A., Ducouret P., et al., "Deep learning-based detection of generalized
convulsive seizures using a wrist-worn accelerometer", Epilepsia 2025, doi:10.1111/epi.18406;
as the OpenSeizureDetector nnTraining2 pipeline builds it in PyTorch. Module names
(``conv_stack``, ``fc1`` ... ``fc_out``) match that pipeline so its checkpoints load as they are.

Architecture, input (N, 1, L) float32 acceleration magnitude in g:

- 14 Conv1d layers, kernel 5, no padding; filters 16, then 32 eleven times, then 64, 64; stride
  2 at layers 5 and 10, otherwise 1; each followed by BatchNorm1d and ReLU, and by Dropout when
  ``conv_dropout`` > 0 (four modules per block instead of three, which shifts the
  ``conv_stack.N`` indices);
- global average pooling over time -> (N, 64);
- dense 64 -> 64 -> 64 -> 32 -> 16 -> classes, each hidden layer with BatchNorm1d and ReLU,
  Dropout after the first; logits out, (N, classes).

For L = 750 and 2 classes: 97,362 trainable parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from osdml.models.registry import register_model

FILTERS = (16,) + (32,) * 11 + (64, 64)
STRIDE_2_LAYERS = (5, 10)  # 1-based
KERNEL = 5


class DeepEpiCnn(nn.Module):
    """The DeepEpiCnn classifier (Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406).

    Parameters
    ----------
    input_length : int, default=750
        Samples per window (30 s at 25 Hz). Must leave at least one sample after the 14
        convolutions (at least 125 samples).
    num_classes : int, default=2
    in_channels : int, default=1
        1 for acceleration magnitude.
    conv_dropout : float, default=0.0
        Dropout after each convolution block; 0 adds no Dropout module.
    dense_dropout : float, default=0.025
        Dropout after the first dense layer.

    Raises
    ------
    ValueError
        If `input_length` is too short for the convolution stack.
    """

    def __init__(self, input_length: int = 750, num_classes: int = 2, in_channels: int = 1,
                 conv_dropout: float = 0.0, dense_dropout: float = 0.025):
        super().__init__()
        if conv_output_length(input_length) < 1:
            raise ValueError(f"input_length={input_length} is too short for DeepEpiCnn's 14 "
                             "convolutions; need at least 125 samples")
        self.input_length = input_length
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c_out in enumerate(FILTERS, start=1):
            stride = 2 if i in STRIDE_2_LAYERS else 1
            layers += [nn.Conv1d(c_in, c_out, KERNEL, stride=stride), nn.BatchNorm1d(c_out),
                       nn.ReLU()]
            if conv_dropout > 0:
                layers.append(nn.Dropout(conv_dropout))
            c_in = c_out
        self.conv_stack = nn.Sequential(*layers)
        self.global_avg_pool = nn.AdaptiveAvgPool1d(1)
        self.fc1, self.bn1, self.relu1 = nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU()
        self.dropout1 = nn.Dropout(dense_dropout) if dense_dropout > 0 else nn.Identity()
        self.fc2, self.bn2, self.relu2 = nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU()
        self.fc3, self.bn3, self.relu3 = nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU()
        self.fc4, self.bn4, self.relu4 = nn.Linear(32, 16), nn.BatchNorm1d(16), nn.ReLU()
        self.fc_out = nn.Linear(16, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) float32 in g -> (N, 64) pooled convolution features."""
        x = self.conv_stack(x)  # (N, 64, L')
        return self.global_avg_pool(x).flatten(1)  # (N, 64)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 64) -> (N, num_classes) logits."""
        x = self.dropout1(self.relu1(self.bn1(self.fc1(x))))
        x = self.relu2(self.bn2(self.fc2(x)))
        x = self.relu3(self.bn3(self.fc3(x)))
        x = self.relu4(self.bn4(self.fc4(x)))
        return self.fc_out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for windows (N, 1, L); the layout is fixed, never inferred."""
        return self.forward_head(self.forward_features(x))


def conv_output_length(input_length: int) -> int:
    """Time steps left after the 14 convolutions for an input of `input_length` samples."""
    n = input_length
    for i in range(1, len(FILTERS) + 1):
        stride = 2 if i in STRIDE_2_LAYERS else 1
        n = (n - KERNEL) // stride + 1
    return n


def multiply_accumulates(input_length: int = 750, num_classes: int = 2,
                         in_channels: int = 1) -> int:
    """Multiply-accumulate operations of one forward pass on one window (convolutions and dense
    layers; batch norm, ReLU and pooling not counted)."""
    macs, n, c_in = 0, input_length, in_channels
    for i, c_out in enumerate(FILTERS, start=1):
        stride = 2 if i in STRIDE_2_LAYERS else 1
        n = (n - KERNEL) // stride + 1
        macs += n * c_out * c_in * KERNEL
        c_in = c_out
    dense = [(64, 64), (64, 64), (64, 32), (32, 16), (16, num_classes)]
    return macs + sum(a * b for a, b in dense)


@register_model
def deep_epi_cnn(input_length: int = 750, num_classes: int = 2, in_channels: int = 1,
                 conv_dropout: float = 0.0, dense_dropout: float = 0.025) -> DeepEpiCnn:
    """DeepEpiCnn as in Spahr et al., Epilepsia 2025 (doi:10.1111/epi.18406)."""
    return DeepEpiCnn(input_length=input_length, num_classes=num_classes, in_channels=in_channels,
                      conv_dropout=conv_dropout, dense_dropout=dense_dropout)
