from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_digits(root: Path, count: int, seed: int = 0) -> Path:
    """scikit-learn's 8x8 digits as PNGs in one folder per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))[:count]
    for index in order:
        folder = root / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), (digits.images[index] * 255 / 16).astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits"), 600)


@pytest.fixture(scope="session")
def lenet_run(tmp_path_factory, digits_dir) -> Path:
    """A short LeNet-5 run on the digits, shared by the export tests."""
    from training import cli

    run_dir = tmp_path_factory.mktemp("runs") / "lenet"
    status = cli.main(
        [
            "train",
            str(digits_dir),
            "--backbone",
            "lenet5",
            "--weights",
            "none",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--augment",
            "none",
            "--seed",
            "3",
            "--out",
            str(run_dir),
        ]
    )
    assert status == 0
    return run_dir
