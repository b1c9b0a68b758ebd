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
_COMPOSITE: set[str] = set()  # built from other models' specs (ensembles): not trained as such


def register_model(fn: Callable[..., Any] | None = None, *, composite: bool = False):
    """Register `fn` under its function name; re-registering a name warns.

    Use as ``@register_model``, or ``@register_model(composite=True)`` for a model assembled
    from other registered models (an ensemble): it is built by ``create_model`` like any other,
    but ``list_models()`` leaves it out, since it cannot be trained from a configuration.
    """
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in _MODELS and _MODELS[name] is not fn:
            warnings.warn(f"model {name!r} registered again by {fn.__module__}", stacklevel=3)
        _MODELS[name] = fn
        if composite:
            _COMPOSITE.add(name)
        return fn

    return register if fn is None else register(fn)


def list_models(*, composite: bool = False) -> list[str]:
    """Names of the registered architectures that train from a configuration, sorted; with
    `composite`, also those assembled from other models (``hd_ensemble``)."""
    _load_builtin()
    return sorted(n for n in _MODELS if composite or n not in _COMPOSITE)


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
    # the modules register themselves when imported
    from osdml.models import cnn_lstm, deep_epi_cnn, ensemble  # noqa: F401
