"""keras.applications bases with `--weights none` train whole, in one stage, with BatchNorm
in training mode; pretrained ones (ImageNet or a weights file) keep the two stages.

The reported failure: MobileNetV2 from random weights on three classes sat at loss
ln 3 and validation accuracy 1/3 in every epoch, because the random base was frozen
with its BatchNorm layers in inference mode and handed the head constant features.
"""

from __future__ import annotations

import csv
import json
import math

import keras
import numpy as np
import pytest
from drawn_shapes import write_shapes

from training.config import TrainConfig
from training.trainer import Trainer, train


def _config(data_dir, out, **overrides) -> TrainConfig:
    values = dict(
        data_dir=str(data_dir),
        out=str(out),
        backbone="mobilenet_v2",
        weights="none",
        image_size=48,
        epochs=5,
        batch_size=8,
        augment="none",
        tensorboard=False,
        seed=1,
        early_stopping_patience=0,
        val_fraction=0.4,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_random_weights_mean_one_stage_and_pretrained_weights_two(tmp_path, capsys):
    scratch = Trainer(_config(tmp_path, tmp_path / "a"))
    assert scratch.config.fine_tune_epochs == 0, "a random base has nothing to fine-tune in a second stage"
    assert not scratch.frozen_base

    asked = Trainer(_config(tmp_path, tmp_path / "b", fine_tune_epochs=3))
    assert asked.config.fine_tune_epochs == 0
    assert "--fine-tune-epochs 3 does not apply" in capsys.readouterr().err

    weights_file = tmp_path / "base.weights.h5"
    weights_file.write_bytes(b"")  # only its name and existence are checked before building
    pretrained = Trainer(_config(tmp_path, tmp_path / "c", weights=str(weights_file)))
    assert pretrained.frozen_base and pretrained.config.fine_tune_epochs == 5


@pytest.mark.slow
def test_mobilenet_v2_from_random_weights_learns_with_batchnorm_in_training_mode(tmp_path, capsys):
    """A real, tiny run: 24 drawn pictures of each of three kinds at 48 px, 5 epochs."""
    data_dir = write_shapes(tmp_path / "shapes" / "train", 24, size=48)
    run_dir = tmp_path / "run"
    result = train(_config(data_dir, run_dir))
    log = capsys.readouterr().err
    assert "features of" not in log, "the feature cache must not stand in for a base that trains"
    assert "whole network from random weights, BatchNorm in training mode, one stage" in log

    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["stage"]) for row in rows] == [1] * 5
    assert min(float(row["loss"]) for row in rows) < 0.9 * math.log(3), "the loss never left ln 3"
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["stages"] == 1 and "random weights" in summary["base_training"]
    assert summary["beats_chance"] is True, summary["chance"]["sentence"]
    assert result.best_val_accuracy >= summary["chance"]["needed_accuracy"] > 1 / 3
    assert summary["dataset"] == "shapes"  # not "train"
    assert "WARNING" not in log

    import training.layers  # noqa: F401  registers the in-graph preprocessing layers

    classifier = keras.models.load_model(run_dir / "best.keras", safe_mode=True)
    base = classifier.get_layer("base")
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert base.trainable and norms and all(layer.trainable for layer in norms)
    # The statistics were learned (they start at mean 0, variance 1) ...
    assert max(float(np.abs(layer.moving_mean.numpy()).max()) for layer in norms) > 1e-3
    # ... and a training-mode call of the saved classifier runs BatchNorm in training mode.
    before = norms[0].moving_mean.numpy().copy()
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 3)).astype("float32")
    classifier(pixels, training=True)
    assert not np.allclose(norms[0].moving_mean.numpy(), before), "BatchNorm ran in inference mode"
