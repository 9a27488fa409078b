"""The frozen part of a network run by ONNX Runtime while the rest trains in TensorFlow.

A frozen part (a pretrained base while its head trains, or the layers below the unfrozen
top while fine-tuning) only ever runs forward, in inference mode: it is inference, and
ONNX Runtime is this project's inference engine. On a CPU it runs those layers about
three times as fast as TensorFlow does (MobileNetV2 below block_12 at 160 px, batch 32,
2 cores: 102 ms against 347 ms a batch), which is most of an augmented epoch's time.
So on a machine where TensorFlow has no GPU, convnet-train converts the frozen part once
per stage (tf2onnx, as export does: a few seconds) and computes its outputs there: for
the feature cache, for the validation split, and, with augmentation, for every augmented
training batch in the input pipeline. The layers that train stay in TensorFlow.

The converted part must reproduce Keras's outputs on a batch of the run's own images
before it is used; when conversion fails or the outputs differ, the stage says why on
stderr and runs the frozen part in TensorFlow. With a GPU, TensorFlow runs everything
(mixed precision and XLA there; ONNX Runtime's CUDA build needs another CUDA).
`CONVNET_TRAIN_FROZEN_ENGINE=tensorflow` keeps the frozen part in TensorFlow anyway.
"""

from __future__ import annotations

import os
import sys
import time

import keras
import numpy as np

ENGINE_VARIABLE = "CONVNET_TRAIN_FROZEN_ENGINE"
ENGINES = ("onnxruntime", "tensorflow")
# ONNX Runtime against Keras on the same batch: the largest difference allowed, relative
# to the largest output magnitude (float32 kernels differ by ~1e-6 of it; a wrong graph
# differs by order 1).
RELATIVE_TOLERANCE = 1e-3


class FrozenPart:
    """float32 pixel batches -> the frozen part's outputs, as numpy, on one engine."""

    def __init__(self, extractor: keras.Model, session=None) -> None:
        self.extractor, self.session = extractor, session
        self.output_shape = tuple(extractor.output.shape[1:])
        self._input = session.get_inputs()[0].name if session is not None else None
        self._keras_call = None

    @property
    def engine(self) -> str:
        return "onnxruntime" if self.session is not None else "tensorflow"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.session is not None:
            return self.session.run(None, {self._input: np.ascontiguousarray(images, dtype=np.float32)})[0]
        if self._keras_call is None:  # traced once, for any batch size
            import tensorflow as tf

            spec = tf.TensorSpec((None, *self.extractor.input_shape[1:]), tf.float32)
            self._keras_call = tf.function(lambda x: self.extractor(x, training=False), input_signature=[spec])
        return self._keras_call(np.asarray(images, dtype=np.float32)).numpy().astype(np.float32, copy=False)

    def dataset_map(self):
        """A tf.data map, (images, label) -> (outputs, label), running this part on each batch."""
        import tensorflow as tf

        shape = (None, *self.output_shape)

        def apply(images, label):
            outputs = tf.numpy_function(self, [images], tf.float32, stateful=False)
            outputs.set_shape(shape)
            return outputs, label

        return apply


def requested_engine() -> str:
    """The engine asked for in the environment, checked ("onnxruntime" when unset)."""
    value = os.environ.get(ENGINE_VARIABLE, "").strip().lower() or "onnxruntime"
    if value not in ENGINES:
        raise ValueError(f"{ENGINE_VARIABLE}={value!r}: expected one of {', '.join(ENGINES)}")
    return value


def tensorflow_has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def frozen_part(extractor: keras.Model, check_images: np.ndarray, what: str) -> FrozenPart:
    """The frozen part on ONNX Runtime where that is wanted and reproduces Keras on
    `check_images`, else on TensorFlow (with the reason on stderr when it was wanted)."""
    # Mixed precision means a GPU is meant to run the network (training.mixed_precision).
    if requested_engine() == "tensorflow" or tensorflow_has_gpu() or keras.config.dtype_policy().name != "float32":
        return FrozenPart(extractor)
    started = time.perf_counter()
    try:
        session = _session(_convert(extractor))
        part = FrozenPart(extractor, session)
        difference = _relative_difference(part(check_images), FrozenPart(extractor)(check_images))
    except Exception as error:  # noqa: BLE001 - tf2onnx and onnxruntime raise many types; TF still works
        _say(
            f"{what}: ONNX Runtime could not run the frozen layers ({type(error).__name__}: {error}); TensorFlow runs them"
        )
        return FrozenPart(extractor)
    if not difference <= RELATIVE_TOLERANCE:
        _say(
            f"{what}: ONNX Runtime's frozen layers differ from Keras's by {difference:.2g} of their range "
            f"(allowed {RELATIVE_TOLERANCE:g}); TensorFlow runs them"
        )
        return FrozenPart(extractor)
    _say(f"{what}: frozen layers run in ONNX Runtime (converted and checked in {time.perf_counter() - started:.1f} s)")
    return part


def _convert(extractor: keras.Model):
    import tensorflow as tf
    import tf2onnx

    from convnet_common import model_format as fmt

    signature = (tf.TensorSpec((None, *extractor.input_shape[1:]), tf.float32, name="pixels"),)
    proto, _ = tf2onnx.convert.from_keras(extractor, input_signature=signature, opset=fmt.OPSET)
    return proto.SerializeToString()


def _session(model: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # TensorFlow trains on the same cores between these runs: ONNX Runtime's threads must
    # sleep when idle instead of spinning for the next call.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _relative_difference(outputs: np.ndarray, reference: np.ndarray) -> float:
    if outputs.shape != reference.shape:
        return float("inf")
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(outputs - reference))) / scale


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
