"""Read a TensorFlow SavedModel folder (saved_model.pb) as an adoption source.

Only the `serving_default` signature is read: it is what TensorFlow Serving, Lobe and
`python -m tf2onnx.convert --saved-model` use, and it names its inputs and outputs. The
graph is frozen and converted the way that command does (tf2onnx.tf_loader.from_saved_model,
then convert.from_graph_def), keeping only the chosen float class-score output, so string
outputs such as Lobe's `Prediction` (a label looked up in the graph) are cut away. The
reference calls the loaded signature itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.adopt.source import KIND_SAVEDMODEL, AdoptError, AdoptSource, Detected

SERVING_SIGNATURE = "serving_default"
SAVED_MODEL_FILE = "saved_model.pb"
INPUT_NAME = "pixels"
PREDICTION_OUTPUT = "scores"
REFERENCE_BATCH = 32
NO_CAM_NOTE = "no activation maps from the graph: the app computes them from forward passes"
LOGIT_OPS = ("Gemm", "MatMul", "Add")


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_serving_signature(folder: Path, tags: list[str] | None = None):
    """(loaded object, serving signature); the object must stay alive while the signature runs."""
    import tensorflow as tf

    if not (folder / SAVED_MODEL_FILE).is_file():
        raise AdoptError(f"{folder}: not a SavedModel folder (no {SAVED_MODEL_FILE} in it)")
    try:
        loaded = tf.saved_model.load(str(folder), tags=tags)
    except Exception as error:  # noqa: BLE001 - TensorFlow raises many types for a bad folder
        raise AdoptError(f"{folder.name}: TensorFlow cannot load the SavedModel: {_first_line(error)}") from None
    signatures = getattr(loaded, "signatures", {})
    if SERVING_SIGNATURE not in signatures:
        others = ", ".join(sorted(signatures)) or "none"
        raise AdoptError(
            f"{folder.name} has no '{SERVING_SIGNATURE}' signature (signatures: {others}); "
            "save it with tf.saved_model.save(model, folder, signatures=...) or export it to ONNX"
        )
    return loaded, signatures[SERVING_SIGNATURE]


def image_input(signature) -> tuple[str, object]:
    """(input key, TensorSpec) of the signature's one image input [N, H, W, 3] float."""
    _, specs = signature.structured_input_signature
    if len(specs) != 1:
        raise AdoptError(f"the serving signature has {len(specs)} inputs ({', '.join(specs)}); adopt needs one image")
    key, spec = next(iter(specs.items()))
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    if shape is None or len(shape) != 4 or shape[-1] != 3 or not spec.dtype.is_floating:
        raise AdoptError(
            f"the serving signature's input {key} is {spec.dtype.name} {shape}; "
            "adopt needs one float image input [N, height, width, 3] (RGB, channels last)"
        )
    return key, spec


def score_output(signature, preferred: tuple[str, ...] = ()) -> str:
    """The output key of the float class scores [N, classes]: a preferred key when present,
    otherwise the only (or the first, by name) float rank-2 output."""
    outputs = signature.structured_outputs
    if not isinstance(outputs, dict):
        raise AdoptError("the serving signature's outputs have no names; adopt needs named outputs")
    scores = sorted(
        key
        for key, tensor in outputs.items()
        if tensor.dtype.is_floating and tensor.shape.rank == 2 and tensor.shape[1] is not None
    )
    for key in preferred:
        if key in scores:
            return key
    if not scores:
        described = ", ".join(f"{k} ({t.dtype.name} {t.shape.as_list()})" for k, t in outputs.items())
        raise AdoptError(f"no float class-score output [N, classes] in the serving signature ({described})")
    return scores[0]


def convert_signature(folder: Path, output_key: str, tags: list[str] | None):
    """The serving signature as ONNX with one input `pixels` and one output `scores`."""
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    from convnet_common import model_format as fmt

    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # tf2onnx's freezing calls deprecated TF1 APIs; their warnings are not news to a user
    try:
        graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
            str(folder),
            None,
            None,
            tag=tags or ["serve"],
            signatures=[SERVING_SIGNATURE],
            return_tensors_to_rename=True,
        )
        tensor = next(name for name in outputs if renames.get(name) == output_key)
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def,
            input_names=inputs,
            output_names=[tensor],
            opset=fmt.OPSET,
            tensors_to_rename={inputs[0]: INPUT_NAME, tensor: PREDICTION_OUTPUT},
        )
    except Exception as error:  # noqa: BLE001 - tf2onnx fails in many ways on unusual ops
        raise AdoptError(f"the SavedModel could not be converted to ONNX: {_first_line(error)}") from None
    finally:
        logger.setLevel(level)
    return proto


def output_kind(proto) -> Detected | None:
    """Probabilities when the score output comes straight from a Softmax, logits from a Dense."""
    producers = {output: node for node in proto.graph.node for output in node.output}
    node = producers.get(PREDICTION_OUTPUT)
    while node is not None and node.op_type == "Identity":
        node = producers.get(node.input[0])
    if node is None:
        return None
    origin = f"the graph's last operation ({node.op_type})"
    if node.op_type == "Softmax":
        return Detected("probabilities", origin)
    if node.op_type in LOGIT_OPS:
        return Detected("logits", origin)
    return None


def signature_reference(loaded, signature, input_key: str, dtype, output_key: str):
    """Runs the original signature on a preprocessed batch -> float32 [N, classes]."""
    import tensorflow as tf

    classes = int(signature.structured_outputs[output_key].shape[1])

    def run(batch: np.ndarray) -> np.ndarray:
        _ = loaded  # the signature's variables live as long as the loaded object
        results = [np.zeros((0, classes), np.float32)]
        for start in range(0, len(batch), REFERENCE_BATCH):
            chunk = tf.constant(np.asarray(batch[start : start + REFERENCE_BATCH]), dtype=dtype)
            results.append(np.asarray(signature(**{input_key: chunk})[output_key].numpy(), np.float32))
        return np.concatenate(results)

    return run


def read_savedmodel_source(
    path: Path, preferred_outputs: tuple[str, ...] = (), tags: list[str] | None = None
) -> AdoptSource:
    """A SavedModel folder (or its saved_model.pb); Lobe's reader passes its output name and tags."""
    path = Path(path)
    folder = path.parent if path.name == SAVED_MODEL_FILE else path
    loaded, signature = load_serving_signature(folder, tags)
    input_key, spec = image_input(signature)
    output_key = score_output(signature, preferred_outputs)
    proto = convert_signature(folder, output_key, tags)
    shape = spec.shape.as_list()
    detected = {"layout": Detected("nhwc", f"the serving signature's input shape {shape}")}
    if shape[1] and shape[2]:
        detected["input_size"] = Detected((int(shape[1]), int(shape[2])), "the serving signature's input shape")
    if spec.dtype.name == "float16":
        detected["input_dtype"] = Detected("float16", "the serving signature's input type")
    kind = output_kind(proto)
    if kind is not None:
        detected["output"] = kind
    notes = [f"class scores from the serving signature's output {output_key!r}", NO_CAM_NOTE]
    dropped = sorted(set(signature.structured_outputs) - {output_key})
    if dropped:
        notes.append(f"outputs left out: {', '.join(dropped)}")
    reference = signature_reference(loaded, signature, input_key, spec.dtype, output_key)
    return AdoptSource(KIND_SAVEDMODEL, folder, proto, reference, detected, notes)
