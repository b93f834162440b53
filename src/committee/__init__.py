"""committee: train a committee of image classifiers on Fashion-MNIST and explain it.

The front door::

    import committee
    result = committee.run(committee.RunConfig(epochs=2), "runs/mine")   # train, evaluate, report
    trained = committee.Committee.load("runs/mine")                     # the fitted committee

Packages by stage, each importing only from those below it (import-linter checks it):
``base`` < ``data`` < ``models`` < ``rules`` < ``config`` < ``store`` < ``training`` <
``evaluation`` < ``reporting`` < ``serving`` < ``study`` < ``cli``.
"""

import importlib

from committee.base.version import __version__

# Public names and the module each lives in. Loaded on first use (PEP 562), so `import committee`
# and the CLI's --help stay light: torch is imported only when a command needs it.
_EXPORTS = {
    "RunConfig": "committee.config.run_config",
    "MemberOptions": "committee.config.run_config",
    "PRESETS": "committee.config.presets",
    "preset": "committee.config.presets",
    "CLASS_NAMES": "committee.data.dataset",
    "Committee": "committee.serving.trained",
    "Prediction": "committee.serving.trained",
    "Abstention": "committee.serving.trained",
    "RunResult": "committee.store.records",
    "register_model": "committee.models.registry",
    "import_models": "committee.models.user_models",
    "train": "committee.study.api",
    "evaluate": "committee.study.api",
    "results": "committee.study.api",
    "report": "committee.study.api",
    "run": "committee.study.api",
    "run_seeds": "committee.study.api",
    "ablate": "committee.study.api",
    "compare": "committee.study.api",
    "distill": "committee.study.api",
    "SeedsResult": "committee.study.api",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'committee' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return getattr(module, name)
