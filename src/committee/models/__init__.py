"""The architectures: one registry (``build_model(name)``), their layers and inference.

Importing the package registers the zoo, so ``get_spec`` and ``build_model`` know every model.
"""

from committee.models import zoo  # noqa: F401  (registers the architectures)
from committee.models.registry import build_model, count_params, get_spec, model_names, register_model

__all__ = ["build_model", "count_params", "get_spec", "model_names", "register_model"]
