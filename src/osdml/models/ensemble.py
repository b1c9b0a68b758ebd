"""A Harrell-Davis quantile ensemble of classifiers, as one model the app runs unchanged.

Source: Spahr A., Bernini A., Ducouret P., et al., "Deep learning-based detection of generalized
convulsive seizures using a wrist-worn accelerometer", Epilepsia 2025, doi:10.1111/epi.18406:
the members' p(seizure) are combined by the Harrell-Davis estimate of their q-quantile
(Harrell F. E., Davis C. E., "A new distribution-free quantile estimator", Biometrika 1982,
doi:10.1093/biomet/69.3.635).

With the N members' p sorted ascending, p_(1) <= ... <= p_(N),

    s_q = sum_i w_i p_(i),    w_i = I_{i/N}(a, b) - I_{(i-1)/N}(a, b),
    a = (N + 1) q,  b = (N + 1) (1 - q),

I the regularised incomplete beta function (``scipy.stats.beta.cdf``); this equals
``scipy.stats.mstats.hdquantiles(p, prob=[q])`` for N >= 2 (for N = 1 scipy gives no value,
masked; the estimate is p_(1) itself).

``HarrellDavisEnsemble`` computes s_q inside the graph and outputs the two logits
``[log(1 - p), log(p)]``, so the app's softmax gives back p. The sort is an odd-even
transposition network of ``torch.minimum`` / ``torch.maximum``: ``aten.sort`` has no kernel in
the ExecuTorch runtime (a program that sorts exports and lowers, then fails to load with
OperatorMissing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from osdml.models.registry import register_model

SOURCE = "Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406 (Harrell-Davis quantile)"


def _check_quantile(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float | np.floating | np.integer):
        raise ValueError(f"quantile must be a number in [0, 1], got {q!r}")
    q = float(q)
    if not (math.isfinite(q) and 0.0 <= q <= 1.0):
        raise ValueError(f"quantile must be in [0, 1], got {q!r}")
    return q


def harrell_davis_weights(n: int, q: float) -> np.ndarray:
    """Weights of the Harrell-Davis q-quantile estimate over `n` sorted values.

    Parameters
    ----------
    n : int
        Number of values (ensemble members), at least 1.
    q : float
        Quantile in [0, 1]. ``q = 0`` puts all weight on the smallest value, ``q = 1`` on the
        largest (the limits of the estimate; the beta distribution is undefined there).

    Returns
    -------
    ndarray of shape (n,), float64
        ``w_i = I_{i/n}(a, b) - I_{(i-1)/n}(a, b)`` with ``a = (n + 1) q``,
        ``b = (n + 1)(1 - q)``; non-negative, summing to 1. ``w @ sorted(x)`` equals
        ``scipy.stats.mstats.hdquantiles(x, prob=[q])`` (for n >= 2).

    Raises
    ------
    ValueError
        If `n` is not an integer >= 1 or `q` is not a finite number in [0, 1].

    Notes
    -----
    Harrell and Davis, Biometrika 1982, doi:10.1093/biomet/69.3.635; as used for ensembles by
    Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    n, q = int(n), _check_quantile(q)
    w = np.zeros(n, dtype=np.float64)
    if q == 0.0:
        w[0] = 1.0
    elif q == 1.0:
        w[-1] = 1.0
    else:
        from scipy.stats import beta

        cdf = beta.cdf(np.arange(n + 1) / n, (n + 1) * q, (n + 1) * (1 - q))
        w = np.diff(cdf)
    return w


def hd_combine(member_p: np.ndarray, q: float) -> np.ndarray:
    """The Harrell-Davis q-quantile over members, window by window.

    Parameters
    ----------
    member_p : array-like of shape (n_members, n_windows)
        Each member's p(seizure) per window (any float dtype; finite).
    q : float
        Quantile in [0, 1].

    Returns
    -------
    ndarray of shape (n_windows,), float64
        ``harrell_davis_weights(n_members, q) @ sort(member_p, axis=0)``.

    Raises
    ------
    ValueError
        If `member_p` is not 2-D with at least one member, holds non-finite values, or `q` is
        out of range.
    """
    p = np.asarray(member_p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"member_p must have shape (n_members, n_windows) with n_members >= 1, "
                         f"got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("member_p holds NaN or infinite values")
    return harrell_davis_weights(p.shape[0], q) @ np.sort(p, axis=0)


def sorting_network(values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Sort tensors of equal shape element-wise, ascending, with an odd-even transposition
    network: N rounds of compare-exchange steps (``torch.minimum`` / ``torch.maximum``) on
    neighbours (0, 1), (2, 3), ... in even rounds and (1, 2), (3, 4), ... in odd ones.

    Used instead of ``torch.sort``, which has no kernel in the ExecuTorch runtime.

    Parameters
    ----------
    values : sequence of N tensors of one shape, e.g. (B,)

    Returns
    -------
    list of N tensors
        Element-wise order statistics: ``out[0]`` the minimum, ``out[-1]`` the maximum.
    """
    v = list(values)
    n = len(v)
    for r in range(n):
        for i in range(r % 2, n - 1, 2):
            v[i], v[i + 1] = torch.minimum(v[i], v[i + 1]), torch.maximum(v[i], v[i + 1])
    return v


class HarrellDavisEnsemble(nn.Module):
    """Members' p(seizure) combined by their Harrell-Davis quantile, output as two logits.

    Source: Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406.

    Parameters
    ----------
    members : list of nn.Module
        Classifiers taking the same input, (B, 1, L) float32, and returning two logits
        (B, 2); p = softmax(logits)[:, 1]. Put in eval mode with the ensemble.
    quantile : float
        q in [0, 1] (0.5: the median's estimate; higher: more sensitive).
    eps : float, default=1e-6
        p is clamped to [eps, 1 - eps] before the logarithms, so the logits stay finite.

    Attributes
    ----------
    members : nn.ModuleList
        Their weights are the ensemble's state dict (``members.0.*``, ``members.1.*``, ...).
    weights : torch.Tensor of shape (N,), float32
        Harrell-Davis weights, a non-persistent buffer (rebuilt from `quantile`, never read
        from a checkpoint).

    Raises
    ------
    ValueError
        If there are no members, `quantile` is not in [0, 1], or `eps` not in (0, 0.5).
    """

    def __init__(self, members: Sequence[nn.Module], quantile: float, eps: float = 1e-6):
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        if not all(isinstance(m, nn.Module) for m in members):
            raise ValueError("every ensemble member must be a torch.nn.Module")
        if not (isinstance(eps, int | float) and 0.0 < eps < 0.5):
            raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
        self.quantile = _check_quantile(quantile)
        self.eps = float(eps)
        self.members = nn.ModuleList(members)
        w = harrell_davis_weights(len(members), self.quantile)
        self.register_buffer("weights", torch.tensor(w, dtype=torch.float32), persistent=False)

    def member_p(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each member's p(seizure), N tensors of shape (B,)."""
        return [torch.softmax(m(x), dim=1)[:, 1] for m in self.members]

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """The ensemble's p(seizure), (B,) float32, clamped to [eps, 1 - eps]."""
        ordered = torch.stack(sorting_network(self.member_p(x)), dim=1)  # (B, N) ascending
        p = (ordered * self.weights).sum(dim=1)
        return torch.clamp(p, self.eps, 1.0 - self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2) = ``[log(1 - p), log(p)]`` for windows (B, 1, L) float32."""
        p = self.probability(x)
        return torch.stack([torch.log(1.0 - p), torch.log(p)], dim=1)


@register_model(composite=True)
def hd_ensemble(members: list[dict[str, Any]], quantile: float, input_length: int = 750,
                num_classes: int = 2, eps: float = 1e-6) -> HarrellDavisEnsemble:
    """A Harrell-Davis ensemble (Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406), members
    built untrained from their specs: ``[{"arch": ..., "arch_kwargs": {...}}, ...]``.

    Raises
    ------
    ValueError
        If `num_classes` is not 2, a member is not ``{"arch", "arch_kwargs"}``, or a member's
        ``input_length`` differs from `input_length`.
    """
    from osdml.models.registry import create_model

    if num_classes != 2:
        raise ValueError(f"an hd_ensemble outputs 2 classes, not {num_classes}")
    if not isinstance(members, list | tuple) or not members:
        raise ValueError("members must be a non-empty list of {'arch', 'arch_kwargs'}")
    built = []
    for i, m in enumerate(members):
        if not isinstance(m, dict) or not isinstance(m.get("arch"), str) \
                or not isinstance(m.get("arch_kwargs", {}), dict):
            raise ValueError(f"member {i} must be {{'arch': str, 'arch_kwargs': dict}}, got {m!r}")
        kwargs = dict(m.get("arch_kwargs") or {})
        if kwargs.get("input_length", input_length) != input_length:
            raise ValueError(f"member {i} takes {kwargs['input_length']} samples; the ensemble "
                             f"takes {input_length}")
        built.append(create_model(m["arch"], **kwargs))
    return HarrellDavisEnsemble(built, quantile, eps=eps)
