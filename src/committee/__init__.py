"""committee: train a committee of image classifiers on Fashion-MNIST and explain it.

The Python API is :mod:`committee.pipeline` (``run``, ``train``, ``evaluate``,
``report``, ``predict``, ``run_seeds``, ``ablate``) over a :class:`RunConfig`;
results are the typed objects of :mod:`committee.results`.
"""

__version__ = "0.1.0"

# Bumped when the layout of a run directory or config.json changes incompatibly.
FORMAT_VERSION = 1

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def __getattr__(name: str):
    # Lazy, so `import committee` stays light (the CLI imports torch only when a command needs it).
    if name == "RunConfig":
        from committee.config import RunConfig
        return RunConfig
    if name == "pipeline":
        import importlib
        return importlib.import_module("committee.pipeline")
    raise AttributeError(f"module 'committee' has no attribute {name!r}")
