"""The frozen part of a network on ONNX Runtime: used only where it reproduces Keras,
and TensorFlow otherwise, with the reason said."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training import frozen_engine


@pytest.fixture(scope="module")
def extractor() -> keras.Model:
    """A small frozen part with BatchNorm statistics that do not vanish (a random
    keras.applications base in inference mode outputs almost zero)."""
    keras.utils.set_random_seed(4)
    pixels = keras.Input((24, 24, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(pixels)
    x = keras.layers.Conv2D(8, 3, strides=2)(x)
    norm = keras.layers.BatchNormalization()
    x = keras.layers.ReLU(6.0)(norm(x))
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    model = keras.Model(pixels, x, name="frozen_part")
    rng = np.random.default_rng(1)
    gamma, beta, mean, variance = norm.get_weights()
    norm.set_weights([gamma * 2, beta + 0.1, rng.normal(0, 0.1, 8), rng.uniform(0.5, 2, 8)])
    model.trainable = False
    return model


def _images(count: int) -> np.ndarray:
    return np.random.default_rng(count).uniform(0, 255, (count, 24, 24, 3)).astype(np.float32)


def test_onnx_runtime_runs_it_and_gives_keras_outputs(extractor, capsys, monkeypatch) -> None:
    monkeypatch.delenv(frozen_engine.ENGINE_VARIABLE, raising=False)
    part = frozen_engine.frozen_part(extractor, _images(4), "frozen base: features")
    assert part.engine == "onnxruntime"
    assert (
        "frozen base: features: frozen layers run in ONNX Runtime (converted and checked in" in capsys.readouterr().err
    )
    images = _images(7)  # another batch size than the check's
    reference = keras.ops.convert_to_numpy(extractor(images, training=False))
    assert float(np.abs(reference).max()) > 0.1  # a real comparison, not of near-zeros
    outputs = part(images)
    assert outputs.shape == reference.shape == (7, *part.output_shape)
    np.testing.assert_allclose(outputs, reference, rtol=1e-4, atol=1e-5 * float(np.abs(reference).max()))


def test_in_the_input_pipeline_batches_hold_its_outputs(extractor, monkeypatch) -> None:
    import tensorflow as tf

    monkeypatch.delenv(frozen_engine.ENGINE_VARIABLE, raising=False)
    part = frozen_engine.frozen_part(extractor, _images(4), "check")
    images, labels = _images(10), np.arange(10, dtype=np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4).map(part.dataset_map())
    assert dataset.element_spec[0].shape.as_list() == [None, *part.output_shape]
    outputs = np.concatenate([batch for batch, _ in dataset.as_numpy_iterator()])
    np.testing.assert_allclose(outputs, part(images), rtol=1e-6, atol=1e-7)
    assert [int(v) for _, batch in dataset.as_numpy_iterator() for v in batch] == list(range(10))


def test_tensorflow_when_asked_or_when_it_has_a_gpu(extractor, capsys, monkeypatch) -> None:
    monkeypatch.setenv(frozen_engine.ENGINE_VARIABLE, "TensorFlow")
    part = frozen_engine.frozen_part(extractor, _images(4), "check")
    assert part.engine == "tensorflow"
    images = _images(5)
    np.testing.assert_allclose(part(images), keras.ops.convert_to_numpy(extractor(images, training=False)), rtol=1e-5)
    monkeypatch.delenv(frozen_engine.ENGINE_VARIABLE)
    monkeypatch.setattr(frozen_engine, "tensorflow_has_gpu", lambda: True)
    assert frozen_engine.frozen_part(extractor, _images(4), "check").engine == "tensorflow"
    assert "ONNX Runtime" not in capsys.readouterr().err  # nothing was wanted of it


def test_a_mistyped_engine_is_refused_by_name(monkeypatch) -> None:
    monkeypatch.setenv(frozen_engine.ENGINE_VARIABLE, "onnx")
    with pytest.raises(
        ValueError, match=r"CONVNET_TRAIN_FROZEN_ENGINE='onnx': expected one of onnxruntime, tensorflow"
    ):
        frozen_engine.requested_engine()


def test_a_failed_conversion_falls_back_to_tensorflow_and_says_why(extractor, capsys, monkeypatch) -> None:
    monkeypatch.delenv(frozen_engine.ENGINE_VARIABLE, raising=False)

    def refuse(model):
        raise ValueError("unsupported op Foo")

    monkeypatch.setattr(frozen_engine, "_convert", refuse)
    part = frozen_engine.frozen_part(extractor, _images(4), "fine-tuning: activations")
    assert part.engine == "tensorflow"
    err = capsys.readouterr().err
    assert (
        "fine-tuning: activations: ONNX Runtime could not run the frozen layers (ValueError: unsupported op Foo)" in err
    )
    assert "TensorFlow runs them" in err


def test_outputs_that_differ_from_keras_are_not_used(extractor, capsys, monkeypatch) -> None:
    """A converted graph that computes something else (here: another network's) is caught
    by the check on the run's own images."""
    monkeypatch.delenv(frozen_engine.ENGINE_VARIABLE, raising=False)
    keras.utils.set_random_seed(9)
    other = keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(8, 3, strides=2), keras.layers.ReLU()])
    other.build((None, 24, 24, 3))
    other_conv = keras.Model(other.inputs, keras.layers.DepthwiseConv2D(3, padding="same")(other.outputs[0]))
    real_convert = frozen_engine._convert
    monkeypatch.setattr(frozen_engine, "_convert", lambda model: real_convert(other_conv))
    part = frozen_engine.frozen_part(extractor, _images(4), "check")
    assert part.engine == "tensorflow"
    assert "check: ONNX Runtime's frozen layers differ from Keras's by" in capsys.readouterr().err
