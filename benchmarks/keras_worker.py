"""The Keras side of the comparisons, run as a subprocess: `python -m benchmarks.keras_worker CMD ...`.

TensorFlow starts its own thread pools on import and keeps them; running Keras in a
separate process keeps them away from the ONNX Runtime measurements. Every command
prints one JSON object as the last line of stdout.

    single --image JPEG --runs 50 --warmup 1   the course notes' one-image path, seconds per call
    folder --folder DIR --passes 1             image_dataset_from_directory + predict, images/s
    export --out PATH                          the stock MobileNetV2 classifier as ConvNet Studio ONNX
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 224
BATCH = 32


def _mobilenet():
    import keras

    # Random weights: the cost of a forward pass does not depend on the values, and the
    # benchmark machine may have no internet for the ImageNet download.
    return keras.applications.MobileNetV2(weights=None)


def single(image: str, runs: int, warmup: int) -> dict[str, Any]:
    """The seeds' path for one image, exactly as the course notes write it, per call."""
    import keras
    import numpy as np

    model = _mobilenet()
    preprocess = keras.applications.mobilenet_v2.preprocess_input

    def classify_once() -> None:
        img = keras.utils.load_img(image, target_size=(SIZE, SIZE))
        x = keras.utils.img_to_array(img)
        x = np.expand_dims(x, axis=0)
        x = preprocess(x)
        model.predict(x, verbose=0)

    for _ in range(warmup):
        classify_once()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        classify_once()
        times.append(time.perf_counter() - started)
    return {"times_s": times}


def folder(path: str, passes: int) -> dict[str, Any]:
    """A folder through the idiomatic Keras input pipeline, images per second per pass."""
    import keras
    import tensorflow as tf

    model = _mobilenet()
    preprocess = keras.applications.mobilenet_v2.preprocess_input

    def dataset():
        images = keras.utils.image_dataset_from_directory(
            path, labels=None, image_size=(SIZE, SIZE), batch_size=BATCH, shuffle=False, verbose=False
        )
        return images.map(preprocess).prefetch(tf.data.AUTOTUNE)

    # The first call, as a one-off script makes it: tracing predict and starting the
    # pipeline's threads included. The timed passes after it are warm.
    started = time.perf_counter()
    first = model.predict(dataset(), verbose=0)
    first_rate = len(first) / (time.perf_counter() - started)
    rates, counts, seconds = [], [], []
    for _ in range(passes):
        started = time.perf_counter()
        predictions = model.predict(dataset(), verbose=0)
        elapsed = time.perf_counter() - started
        counts.append(int(len(predictions)))
        seconds.append(elapsed)
        rates.append(len(predictions) / elapsed)
    return {"images": counts, "seconds": seconds, "images_per_s": rates, "first_call_images_per_s": first_rate}


def export(out: str) -> dict[str, Any]:
    """Export the stock MobileNetV2 classifier (random weights) and move it into place whole."""
    from training.pretrained import export_pretrained

    target = Path(out)
    partial = target.with_name(f".{target.name}.partial.onnx")
    started = time.perf_counter()
    export_pretrained("mobilenet_v2", partial, weights=None, class_names=[f"class {i}" for i in range(1000)])
    os.replace(partial, target)
    return {"path": str(target), "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.keras_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("single")
    one.add_argument("--image", required=True)
    one.add_argument("--runs", type=int, default=50)
    one.add_argument("--warmup", type=int, default=1)
    many = commands.add_parser("folder")
    many.add_argument("--folder", required=True)
    many.add_argument("--passes", type=int, default=1)
    build = commands.add_parser("export")
    build.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "single":
        result = single(args.image, args.runs, args.warmup)
    elif args.command == "folder":
        result = folder(args.folder, args.passes)
    else:
        result = export(args.out)
    sys.stdout.flush()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
