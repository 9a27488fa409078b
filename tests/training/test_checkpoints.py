"""The resume point as arrays, the best weights kept in memory and written as best.keras
when a stage ends or the run stops (training.checkpoints)."""

from __future__ import annotations

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from test_fine_tuning import InterruptAfterEpoch, _lenet_config

from convnet_common.run_layout import RunFolder
from training.checkpoints import BestCheckpoint, assign_arrays, load_arrays, save_arrays
from training.resume_run import resume
from training.trainer import train


def _tiny_model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3)(inputs)))


def test_arrays_that_do_not_fit_the_model_are_refused_by_name(tmp_path):
    model = _tiny_model()
    before = [v.numpy().copy() for v in model.weights]
    path = tmp_path / "w.npz"
    save_arrays([np.zeros(v.shape, "float32") for v in model.weights[:-1]], path)
    with pytest.raises(ValueError, match=r"w\.npz does not match this model \(3 arrays for 4 variables\)"):
        assign_arrays(model.weights, load_arrays(path), path)
    shapes = [np.zeros(v.shape, "float32") for v in model.weights]
    shapes[0] = np.zeros((5, 3), "float32")
    with pytest.raises(ValueError, match=r"\(5, 3\) saved, \(4, 3\) expected"):
        assign_arrays(model.weights, shapes, path)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))  # nothing half-assigned


def test_best_keras_holds_the_best_epoch_not_the_last_and_the_model_keeps_training_weights(tmp_path):
    model = _tiny_model()
    (tmp_path / "checkpoints").mkdir()
    best = BestCheckpoint(tmp_path / "best.keras", model, "val_accuracy")
    best.on_epoch_end(0, {"val_accuracy": 0.5})
    at_best = [v.numpy().copy() for v in model.weights]
    for variable in model.weights:
        variable.assign(variable.numpy() + 1.0)
    best.on_epoch_end(1, {"val_accuracy": 0.4})  # worse: not kept
    latest = [v.numpy().copy() for v in model.weights]
    assert not (tmp_path / "best.keras").exists()  # nothing written before a stage ends
    best.write()
    saved = keras.models.load_model(tmp_path / "best.keras")
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(at_best, saved.weights))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(latest, model.weights))
    assert best.best_epoch == 1 and best.best == 0.5
    kept = load_arrays(RunFolder(tmp_path).best_weights)  # what a killed run resumes with
    assert all(np.array_equal(a, b) for a, b in zip(at_best, kept))


def _rows(run_dir):
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


class AlsoSaveLegacyWeights(keras.callbacks.Callback):
    """What a run folder made before the .npz resume point holds: epoch-NNNN.weights.h5."""

    def __init__(self, run_dir):
        super().__init__()
        self.folder = RunFolder(run_dir)

    def on_epoch_end(self, epoch, logs=None):
        self.model.save_weights(self.folder.legacy_epoch_weights(f"epoch-{epoch + 1:04d}"))


@pytest.mark.slow
def test_a_stopped_run_has_best_keras_and_an_older_h5_resume_point_still_resumes(digits_dir, tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    with pytest.raises(KeyboardInterrupt):
        train(
            _lenet_config(digits_dir, new, epochs=3, deterministic=True),
            callbacks=[AlsoSaveLegacyWeights(new), InterruptAfterEpoch(2)],
        )
    folder = RunFolder(new)
    assert folder.best_checkpoint.is_file()  # Stop leaves a model export can read
    saved = keras.models.load_model(folder.best_checkpoint, safe_mode=True)
    best = load_arrays(folder.best_weights)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(best, saved.weights))

    shutil.copytree(new, old)
    state = json.loads(RunFolder(old).state.read_text())
    RunFolder(old).epoch_weights(state["checkpoint"]).unlink()  # only the .weights.h5 is left
    RunFolder(old).legacy_epoch_weights("epoch-0001").unlink(missing_ok=True)
    assert RunFolder(old).legacy_epoch_weights(state["checkpoint"]).is_file()
    for run_dir in (new, old):
        assert resume(run_dir).epochs_run == 3
    # The same weights were restored both ways: the resumed epochs match to the last digit
    # (op determinism on, so no thread scheduling of any CPU can make them differ).
    assert [row["val_loss"] for row in _rows(old)] == [row["val_loss"] for row in _rows(new)]

    # The run scored its best weights in memory, on the pixels it had decoded: the same
    # temperature and report as best.keras loaded from disk on freshly decoded files.
    from training.data import Sample
    from training.evaluate import evaluate_samples, keras_predict_fn
    from training.run_report import fit_calibration, load_best

    split = json.loads(folder.split.read_text())
    val = [Sample(path, label) for path, label in split["val"]]
    result = json.loads(folder.result.read_text())
    from_disk = fit_calibration(folder, val, 32)
    assert from_disk["temperature"] == pytest.approx(result["calibration"]["temperature"], rel=1e-6)
    fresh = evaluate_samples(keras_predict_fn(load_best(folder)), val, split["labels"], 32, None)
    metrics = json.loads((folder.report / "metrics.json").read_text())
    assert metrics["accuracy"] == fresh.accuracy and metrics["confusion_matrix"] == fresh.confusion_matrix
