"""Model architectures (one module each) and their registry. Importing this package does not
import torch; ``create_model`` does."""

from osdml.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
