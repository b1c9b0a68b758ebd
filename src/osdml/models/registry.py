"""Model registry: architectures are created by name with keyword arguments.

Each architecture lives in its own module and registers a factory function with
``@register_model``; ``create_model(name, **kwargs)`` is the one way to build one, so a
``ModelSpec`` (architecture name + constructor arguments) is enough to rebuild any model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register `fn` under its function name; re-registering a name warns."""
    name = fn.__name__
    if name in _MODELS and _MODELS[name] is not fn:
        warnings.warn(f"model {name!r} registered again by {fn.__module__}", stacklevel=2)
    _MODELS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of the registered architectures, sorted."""
    _load_builtin()
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any):
    """Build the architecture `name` with `kwargs` (``None`` values are dropped, so an unset
    option never overrides a model default).

    Raises
    ------
    KeyError
        If `name` is not registered; the message lists the known names.
    """
    _load_builtin()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**{k: v for k, v in kwargs.items() if v is not None})


def _load_builtin() -> None:
    from osdml.models import deep_epi_cnn  # noqa: F401  (registers itself)
