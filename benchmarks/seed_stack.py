"""The seed's own stack (Keras 3 on TensorFlow, CPU) training basic_cnn and deep_cnn, for issue 14's
"2x the seed's stack" target. Run it in the same sitting as ``committee bench`` and compare ratios.

The models are the seed's (DESIGN.md's table, parameter counts checked), trained the way the seed
trains them: ``model.fit`` with Adam, batch 32 (Keras' default), float images in memory. Random
images: throughput does not depend on pixel values. Images/s: the median of the epochs after the
first (which includes tracing). Needs TensorFlow, which the project does not depend on:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu
    /tmp/tfenv/bin/python benchmarks/seed_stack.py --out benchmarks/results/seed_stack.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def cpu_model() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    import numpy as np
    import tensorflow as tf
    from keras import layers
    from tensorflow import keras

    threads = len(os.sched_getaffinity(0))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    models = {
        "basic_cnn": (
            lambda: keras.Sequential(
                [
                    keras.Input((28, 28, 1)),
                    layers.Conv2D(32, 3, activation="relu"),
                    layers.MaxPooling2D(2),
                    layers.Flatten(),
                    layers.Dense(128, activation="relu"),
                    layers.Dense(10, activation="softmax"),
                ]
            ),
            693_962,
        ),
        "deep_cnn": (
            lambda: keras.Sequential(
                [
                    keras.Input((28, 28, 1)),
                    layers.Conv2D(64, 3, activation="relu"),
                    layers.MaxPooling2D(2),
                    layers.Conv2D(128, 3, activation="relu"),
                    layers.MaxPooling2D(2),
                    layers.Flatten(),
                    layers.Dense(256, activation="relu"),
                    layers.Dense(10, activation="softmax"),
                ]
            ),
            896_522,
        ),
    }
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 28, 28, 1)).astype("float32") / 255.0
    y = rng.integers(0, 10, args.images)
    rows = []
    for name, (build, params) in models.items():
        model = build()
        assert model.count_params() == params, (name, model.count_params())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        times = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)

        model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=[Timer()])
        rate = args.images / statistics.median(times[1:])
        rows.append({"name": name, "train_images_per_s": rate, "epoch_seconds": times})
        print(f"{name}: {rate:,.0f} images/s (Keras {keras.__version__}, TensorFlow {tf.__version__})", flush=True)
    with open(args.out, "w") as fh:
        json.dump(
            {
                "members": rows,
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "cpu": cpu_model(),
                "threads": threads,
                "batch_size": 32,
                "images": args.images,
            },
            fh,
            indent=1,
        )


if __name__ == "__main__":
    main()
