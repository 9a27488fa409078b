"""Stages, resume after an interruption, configuration round trips, class weights."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from training import cli, data
from training.config import TrainConfig, parse_unfreeze
from training.resume_run import resume
from training.trainer import train

pytestmark = pytest.mark.slow


class InterruptAfterEpoch(keras.callbacks.Callback):
    """What Ctrl+C does between two epochs, at a chosen epoch."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _lenet_config(digits_dir, out, **overrides) -> TrainConfig:
    values = dict(
        data_dir=str(digits_dir),
        out=str(out),
        backbone="lenet5",
        weights="none",
        epochs=4,
        augment="none",
        tensorboard=False,
        seed=7,
        early_stopping_patience=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_interrupted_run_resumes_at_the_same_epoch(digits_dir, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(_lenet_config(digits_dir, run_dir), callbacks=[InterruptAfterEpoch(2)])
    state = json.loads((run_dir / "checkpoints" / "state.json").read_text())
    assert state["next_epoch"] == 2 and not state["finished"]
    assert [row["epoch"] for row in _history(run_dir)] == ["1", "2"]

    result = resume(run_dir)
    assert result.epochs_run == 4
    rows = _history(run_dir)
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"]
    assert json.loads((run_dir / "checkpoints" / "state.json").read_text())["finished"]
    assert json.loads((run_dir / "result.json").read_text())["epochs"] == 4


def test_resume_restores_optimizer_state(digits_dir, tmp_path):
    """The step counter continues rather than restarting (Adam's bias correction, LR schedules)."""
    run_dir = tmp_path / "run"
    seen = {}

    class RecordIterations(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.setdefault("start", int(self.model.optimizer.iterations.numpy()))

    with pytest.raises(KeyboardInterrupt):
        train(_lenet_config(digits_dir, run_dir, epochs=3), callbacks=[InterruptAfterEpoch(1)])
    resume(run_dir, callbacks=[RecordIterations()])
    steps_per_epoch = int(np.ceil(480 / 32))
    assert seen["start"] == steps_per_epoch


def test_resuming_a_finished_run_says_so(digits_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(_lenet_config(digits_dir, run_dir, epochs=1))
    assert cli.main(["train", "--resume", str(run_dir)]) == 2
    assert "already finished" in capsys.readouterr().err


def test_config_file_reproduces_a_run_and_flags_override_it(digits_dir, tmp_path):
    first = tmp_path / "first"
    assert (
        cli.main(
            [
                "train",
                str(digits_dir),
                "--backbone",
                "lenet5",
                "--weights",
                "none",
                "--epochs",
                "1",
                "--augment",
                "none",
                "--seed",
                "5",
                "--no-tensorboard",
                "--out",
                str(first),
            ]
        )
        == 0
    )
    second = tmp_path / "second"
    assert cli.main(["train", "--config", str(first / "config.yaml"), "--epochs", "2", "--out", str(second)]) == 0
    one = TrainConfig.load(first / "config.yaml")
    two = TrainConfig.load(second / "config.yaml")
    assert two.epochs == 2 and two.out == str(second)
    assert {k: v for k, v in vars(one).items() if k not in ("epochs", "out")} == {
        k: v for k, v in vars(two).items() if k not in ("epochs", "out")
    }
    split_one = json.loads((first / "split.json").read_text())
    split_two = json.loads((second / "split.json").read_text())
    assert split_one["val"] == split_two["val"], "the same seed must give the same split"


def test_class_weights_switch_on_for_imbalanced_folders():
    assert data.class_weights_for([100, 100], "auto", 1.5) is None
    weights = data.class_weights_for([300, 100], "auto", 1.5)
    assert weights == pytest.approx([400 / 600, 400 / 200])
    assert data.class_weights_for([300, 100], "off", 1.5) is None
    assert data.class_weights_for([100, 100], "on", 1.5) == pytest.approx([1.0, 1.0])


def test_unfreeze_values():
    assert parse_unfreeze("0.25") == 0.25
    assert parse_unfreeze("30") == 30
    for bad in ("0", "1.5", "all", "-3"):
        with pytest.raises(ValueError):
            parse_unfreeze(bad)


@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 0.01), ("rmsprop", 0.001)])
def test_other_optimizers_and_label_smoothing_train(digits_dir, tmp_path, optimizer, learning_rate):
    result = train(
        _lenet_config(
            digits_dir,
            tmp_path / optimizer,
            epochs=2,
            optimizer=optimizer,
            label_smoothing=0.1,
            learning_rate=learning_rate,
        )
    )
    assert result.best_val_accuracy > 0.2


def test_two_stage_fine_tuning_learns_on_real_data(digits_dir, tmp_path, capsys):
    """VGG16 from a weights file (the pretrained recipe; random weights stand in for
    ImageNet's, which cannot be downloaded here): stage 1 (head on the frozen base, trained
    on cached features) alone gets little; unfreezing the top of the base in stage 2 must
    lift the held-out accuracy well above chance (0.1)."""
    keras.utils.set_random_seed(1)
    weights_file = tmp_path / "vgg16_base.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(weights_file)
    run_dir = tmp_path / "vgg"
    result = train(
        TrainConfig(
            data_dir=str(digits_dir),
            out=str(run_dir),
            backbone="vgg16",
            weights=str(weights_file),
            image_size=32,
            epochs=4,
            learning_rate=3e-3,
            fine_tune_epochs=4,
            fine_tune_learning_rate=1e-4,
            unfreeze="0.3",
            augment="none",
            tensorboard=False,
            seed=1,
            early_stopping_patience=0,
        )
    )
    log = capsys.readouterr().err
    assert "features of 600 images cached" in log
    assert "stage 2 (top" in log
    rows = _history(run_dir)
    assert [int(r["stage"]) for r in rows] == [1] * 4 + [2] * 4
    assert all(float(r["learning_rate"]) == pytest.approx(1e-4) for r in rows[4:])
    stage1 = max(float(r["val_accuracy"]) for r in rows[:4])
    stage2 = max(float(r["val_accuracy"]) for r in rows[4:])
    assert stage2 > stage1
    assert result.best_val_accuracy >= 0.4


def test_stage_two_unfreezes_the_top_and_keeps_batchnorm_frozen():
    from training import registry
    from training.model_builder import build_classifier
    from training.trainer import set_trainable_for_stage

    backbone = registry.get_backbone("mobilenet_v2")
    classifier = build_classifier(backbone, 3, 32, None, freeze_base=True)  # as a pretrained base is
    base = classifier.get_layer("base")
    assert not base.trainable  # stage 1: frozen
    count = set_trainable_for_stage(classifier, True, 2, "0.3")
    layers = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    top = layers[-count:]
    assert count == int(np.ceil(0.3 * len(layers)))
    assert not any(layer.trainable for layer in layers[:-count])
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in top)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in top)


def test_googlenet_trains_with_auxiliary_classifiers_that_export_drops(digits_dir, tmp_path):
    run_dir = tmp_path / "googlenet"
    result = train(
        TrainConfig(
            data_dir=str(digits_dir),
            out=str(run_dir),
            backbone="googlenet",
            weights="none",
            image_size=32,
            epochs=2,
            augment="none",
            tensorboard=False,
            seed=2,
        )
    )
    assert result.best_val_accuracy > 0.1
    history = _history(run_dir)[0]
    assert "val_accuracy" in history and "aux1_loss" in history
    import training.layers  # noqa: F401 - registers the in-graph layers for loading

    best = keras.models.load_model(run_dir / "best.keras", safe_mode=True)
    assert len(best.outputs) == 1
    assert not [layer.name for layer in best.layers if "aux" in layer.name]


def test_ctrl_c_in_a_real_process_leaves_a_resumable_run(digits_dir, tmp_path):
    """SIGINT to `convnet-train train` as a terminal's Ctrl+C sends it: exit 130 with the
    resume command, and --resume finishes the run at the planned final epoch."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    run_dir = tmp_path / "run"
    # As a terminal's foreground job runs it: SIGINT at its default even when this suite runs
    # as a background job (which a shell starts with SIGINT ignored, inherited by children).
    start = "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    start += "sys.argv[0] = 'convnet-train'; runpy.run_module('training.cli', run_name='__main__')"
    command = [
        sys.executable,
        "-c",
        start,
        "train",
        str(digits_dir),
        "--backbone",
        "lenet5",
        "--weights",
        "none",
        "--epochs",
        "30",
        "--augment",
        "light",
        "--no-tensorboard",
        "--early-stopping-patience",
        "0",
        "--out",
        str(run_dir),
    ]
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        command,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Streaming from the files (no decoded cache) keeps each epoch long enough that the
        # signal lands mid-run even when this process is slow to see the first resume point.
        env={**os.environ, "PYTHONPATH": str(root), "CONVNET_TRAIN_CACHE_MB": "0"},
    )
    state = run_dir / "checkpoints" / "state.json"
    deadline = time.monotonic() + 240
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.exists(), "no epoch finished"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert f"--resume {run_dir}" in err
    saved = json.loads(state.read_text())
    assert not saved["finished"] and 1 <= saved["next_epoch"] < 30

    assert cli.main(["train", "--resume", str(run_dir)]) == 0
    assert [int(row["epoch"]) for row in _history(run_dir)] == list(range(1, 31))
    assert json.loads(state.read_text())["finished"]
