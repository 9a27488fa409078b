"""Fine-tuning on cached activations: the frozen part of the base runs once, and what
trains on its outputs is the same network with the same weights as the whole chain."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from training import feature_cache, registry
from training.config import TrainConfig
from training.model_builder import BASE_LAYER, build_classifier, set_trainable_for_stage
from training.trainer import train

APPLICATIONS = ["mobilenet_v2", "resnet50", "efficientnet_b0", "vgg16", "xception", "inception_v3"]


@pytest.mark.parametrize("name", APPLICATIONS)
def test_the_cut_computes_what_the_classifier_computes(name: str) -> None:
    """For every keras.applications base: the extractor holds no trainable weight, the
    model on its outputs trains exactly the classifier's trainable variables, in the same
    order (a resume point's optimizer state is stored by position, so a run stopped with
    the cache on resumes with it off and back), and the two give the same probabilities."""
    keras.utils.set_random_seed(0)
    backbone = registry.get_backbone(name)
    size = max(backbone.min_image_size, 32)
    classifier = build_classifier(backbone, 3, size, None, freeze_base=True)
    assert feature_cache.split_base(classifier.get_layer(BASE_LAYER)) is None  # stage 1: nothing trains
    set_trainable_for_stage(classifier, True, 2, "0.25")
    models = feature_cache.stage_models(classifier, 2, 10)
    assert models is not None
    extractor, top, what = models
    assert what.startswith("fine-tuning: activations")
    assert not extractor.trainable_weights
    assert [v.path for v in top.trainable_variables] == [v.path for v in classifier.trainable_variables]
    pixels = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")
    whole = keras.ops.convert_to_numpy(classifier(pixels, training=False))
    cut = keras.ops.convert_to_numpy(top(extractor(pixels, training=False), training=False))
    np.testing.assert_allclose(cut, whole, rtol=1e-4, atol=1e-6)


def test_nothing_to_cut_when_the_whole_base_trains() -> None:
    classifier = build_classifier(registry.get_backbone("mobilenet_v2"), 3, 32, None, freeze_base=True)
    set_trainable_for_stage(classifier, True, 2, "1.0")
    assert feature_cache.split_base(classifier.get_layer(BASE_LAYER)) is None
    assert feature_cache.stage_models(classifier, 2, 10) is None


def _config(digits_dir, out, weights_file, **overrides) -> TrainConfig:
    values = dict(
        data_dir=str(digits_dir),
        out=str(out),
        backbone="mobilenet_v2",
        weights=str(weights_file),
        image_size=32,
        epochs=1,
        fine_tune_epochs=2,
        fine_tune_learning_rate=1e-3,
        unfreeze="0.3",
        tensorboard=False,
        seed=3,
        deterministic=True,
        early_stopping_patience=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory):
    """Random MobileNetV2 base weights in a file: the pretrained recipe without a download."""
    keras.utils.set_random_seed(2)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_base.weights.h5"
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    return path


def _history(run_dir) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_fine_tuning_on_the_cache_trains_as_the_whole_network_does(
    digits_dir, tmp_path, capsys, monkeypatch, mobilenet_weights
):
    """The same run three times, with op determinism: with the cache (the frozen part's
    outputs computed once, on ONNX Runtime); with a memory budget of zero (no cache fits:
    ONNX Runtime computes them again every epoch, and the log says why); and with a budget
    of zero and the frozen part on TensorFlow (every epoch runs the whole network in
    Keras). The epochs' losses and accuracies and the best weights agree."""
    weights_file = mobilenet_weights

    def run(out: str):
        train(_config(digits_dir, tmp_path / out, weights_file, augment="none"))
        return capsys.readouterr().err

    cached_log = run("cached")
    monkeypatch.setenv("CONVNET_TRAIN_CACHE_MB", "0")
    streamed_log = run("streamed")
    monkeypatch.setenv("CONVNET_TRAIN_FROZEN_ENGINE", "tensorflow")
    whole_log = run("whole")
    assert "fine-tuning: activations at the frozen layers' end (" in cached_log and "cached" in cached_log
    assert (
        "fine-tuning: activations at the frozen layers' end (2x2x96): frozen layers run in ONNX Runtime" in cached_log
    )
    assert "they are computed again every epoch" in streamed_log and "frozen layers run in ONNX Runtime" in streamed_log
    assert "frozen layers run in ONNX Runtime" not in whole_log, whole_log
    assert "\nfine-tuning: activations at" not in whole_log, whole_log  # only the validation split's
    whole = _history(tmp_path / "whole")
    for name in ("cached", "streamed"):
        rows = _history(tmp_path / name)
        assert [row["stage"] for row in rows] == ["1", "2", "2"]
        for a, b in zip(rows, whole, strict=True):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                assert float(a[key]) == pytest.approx(float(b[key]), rel=2e-3, abs=2e-3), (name, key, a, b)
        best = [np.load(tmp_path / run_name / "checkpoints" / "best.weights.npz") for run_name in (name, "whole")]
        assert sorted(best[0].files) == sorted(best[1].files)
        for key in best[0].files:
            np.testing.assert_allclose(best[0][key], best[1][key], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["onnxruntime", "tensorflow"])
def test_augmented_stages_on_the_frozen_part_train_as_fit_would(
    engine, digits_dir, tmp_path, capsys, monkeypatch, mobilenet_weights
) -> None:
    """With augmentation the training split cannot be cached, but the validation split
    (never augmented) can: both stages score it on their frozen part's cached outputs.
    On ONNX Runtime the frozen part also runs on every augmented training batch in the
    input pipeline and only the rest trains in Keras; on TensorFlow the whole network
    trains and a first callback scores validation. Either way, the same run with the
    caches off (fit's own validation through the whole network) gives the same losses
    and accuracies at every epoch, and the same best epoch."""
    monkeypatch.setenv("CONVNET_TRAIN_FROZEN_ENGINE", engine)
    cached_result = train(_config(digits_dir, tmp_path / "cached", mobilenet_weights, augment="seed"))
    cached_log = capsys.readouterr().err
    fit_result = train(_config(digits_dir, tmp_path / "fit", mobilenet_weights, augment="seed", feature_cache=False))
    fit_log = capsys.readouterr().err
    assert "validation: frozen base: features of 120 images cached" in cached_log, cached_log
    assert "validation: fine-tuning: activations" in cached_log
    assert cached_log.count("frozen layers run in ONNX Runtime") == (2 if engine == "onnxruntime" else 0), cached_log
    assert "validation:" not in fit_log and "ONNX Runtime" not in fit_log
    cached, fit = _history(tmp_path / "cached"), _history(tmp_path / "fit")
    assert [row["stage"] for row in cached] == ["1", "2", "2"]
    for a, b in zip(cached, fit, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=2e-3, abs=2e-3), (key, a, b)
    # The best checkpoint and the plateau callbacks read the cached scores.
    assert cached_result.best_epoch == fit_result.best_epoch
    assert cached_result.best_val_accuracy == pytest.approx(fit_result.best_val_accuracy, abs=2e-3)
