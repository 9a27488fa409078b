"""Mixed precision: on where a GPU with tensor cores is, forced with --mixed-precision on,
and never in what a run leaves behind (the report, the ONNX file and evaluate are float32)."""

from __future__ import annotations

import keras
import numpy as np
import onnx
import pytest

from training import mixed_precision, registry
from training.config import TrainConfig
from training.export import export_run
from training.model_builder import build_classifier
from training.trainer import train


def test_auto_is_on_only_with_a_tensor_core_gpu(monkeypatch) -> None:
    monkeypatch.setattr(mixed_precision, "gpus_with_tensor_cores", lambda: [])
    assert mixed_precision.wanted("auto") == (False, "")
    monkeypatch.setattr(mixed_precision, "gpus_with_tensor_cores", lambda: ["NVIDIA H200"])
    enabled, why = mixed_precision.wanted("auto")
    assert enabled and why.endswith("on NVIDIA H200")
    assert mixed_precision.wanted("off") == (False, "")
    assert mixed_precision.wanted("on")[0]
    with pytest.raises(ValueError, match="--mixed-precision takes one of auto, on, off, not 'fp16'"):
        mixed_precision.wanted("fp16")


def test_this_machine_has_no_gpu_so_auto_is_off() -> None:
    """The suite's machines have no GPU: `auto` must leave them in float32 (slower otherwise)."""
    assert mixed_precision.wanted("auto")[0] is bool(mixed_precision.gpus_with_tensor_cores())


def test_the_policy_is_put_back_after_the_run(capsys) -> None:
    assert keras.config.dtype_policy().name == "float32"
    with mixed_precision.policy_for("on") as enabled:
        assert enabled and keras.config.dtype_policy().name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"
    assert "mixed precision (float16 arithmetic, float32 weights)" in capsys.readouterr().err
    with pytest.raises(RuntimeError), mixed_precision.policy_for("on"):
        raise RuntimeError("a run that fails")
    assert keras.config.dtype_policy().name == "float32"


def test_a_mixed_classifier_becomes_float32_with_the_same_weights() -> None:
    keras.utils.set_random_seed(1)
    backbone = registry.get_backbone("lenet5")
    with mixed_precision.policy_for("on"):
        mixed = build_classifier(backbone, 3, 32, None)
    assert mixed_precision.is_mixed(mixed)
    assert mixed.get_layer("probabilities").compute_dtype == "float32"  # softmax in float32 even so
    copy = mixed_precision.as_float32(mixed)
    assert not mixed_precision.is_mixed(copy) and copy is not mixed
    assert all(layer.compute_dtype == "float32" for layer in copy.layers)
    for a, b in zip(mixed.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1 if backbone.input_channels == 1 else 3))
    pixels = pixels.astype("float32")
    np.testing.assert_allclose(copy.predict(pixels, verbose=0), mixed.predict(pixels, verbose=0), atol=2e-2)
    assert mixed_precision.as_float32(copy) is copy  # float32 already: untouched


@pytest.mark.slow
def test_a_mixed_precision_run_trains_and_exports_float32(digits_dir, tmp_path, capsys) -> None:
    """--mixed-precision on, on this CPU: both stages train (float16 arithmetic, the loss
    scaled), the report scores a float32 copy, and the ONNX file export writes (after its
    own check against Keras) holds no float16 tensor."""
    weights = tmp_path / "mobilenet_v2_base.weights.h5"
    keras.utils.set_random_seed(2)
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(weights)
    config = TrainConfig(
        data_dir=str(digits_dir),
        out=str(tmp_path / "run"),
        backbone="mobilenet_v2",
        weights=str(weights),
        image_size=32,
        epochs=1,
        fine_tune_epochs=1,
        augment="seed",
        tensorboard=False,
        seed=3,
        mixed_precision="on",
    )
    result = train(config)
    err = capsys.readouterr().err
    assert "mixed precision (float16 arithmetic, float32 weights): asked for with --mixed-precision on" in err
    assert "frozen layers run in ONNX Runtime" not in err  # TensorFlow runs a mixed network whole
    assert keras.config.dtype_policy().name == "float32"
    assert result.epochs_run == 2 and np.isfinite(result.best_val_accuracy)
    report = export_run(tmp_path / "run", tmp_path / "model.onnx")
    model = onnx.load(str(report.path))
    float16 = onnx.TensorProto.FLOAT16
    assert not [t.name for t in model.graph.initializer if t.data_type == float16]
    assert not [n.name for n in model.graph.node if n.op_type == "Cast" and any(a.i == float16 for a in n.attribute)]
