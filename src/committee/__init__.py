"""committee: train a committee of image classifiers on Fashion-MNIST and explain it."""

__version__ = "0.1.0"

# Bumped when the layout of a run directory or config.json changes incompatibly.
FORMAT_VERSION = 1

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
