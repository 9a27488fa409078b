"""Epochs on cached features: whatever part of the network is frozen runs once, not every epoch.

While the base is frozen and no augmentation is on, the base computes the same features
for an image every epoch. Computing them once and training only the head on the cache
turns each epoch from a full forward pass through the backbone into a few matrix
products. The head layers are the classifier's own, so training them here trains the
classifier; benchmarks/bench_feature_cache.py measures the speed-up.

Fine-tuning (stage 2) unfreezes only the top of the base: the layers below still compute
the same activations every epoch. There the cache holds the activations at the deepest
tensor below the first trainable layer that everything above depends on alone (a block's
output, never a tensor a residual connection skips past), and each epoch runs only the
top of the base and the head. The cut is found by asking Keras for the sub-model from
that tensor; the layers are the classifier's own, so the weights trained are the ones
exported. The cache must fit the decoded-image memory budget (training.decoded_cache);
when it does not, the frozen part computes its outputs again every epoch.

Whatever is frozen runs on ONNX Runtime where it can (training.frozen_engine): the
extraction here, and, with augmentation (which rules the training cache out), the frozen
part on every augmented batch in the input pipeline (augmented_inputs).
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from training import data, decoded_cache, frozen_engine
from training.model_builder import BASE_LAYER, PROBABILITIES_LAYER, head_of, preprocessing_of

# Head layers whose output depends only on their input: safe to apply before caching.
_DETERMINISTIC = (keras.layers.GlobalAveragePooling2D, keras.layers.AveragePooling2D, keras.layers.Flatten)


def split_head(head: list[keras.layers.Layer]) -> tuple[list[keras.layers.Layer], list[keras.layers.Layer]]:
    """Leading deterministic layers (cached) and the rest (trained)."""
    count = 0
    while count < len(head) and isinstance(head[count], _DETERMINISTIC):
        count += 1
    return head[:count], head[count:]


def build_extractor_and_head(classifier: keras.Model) -> tuple[keras.Model, keras.Model]:
    """pixels -> cached features, and cached features -> probabilities (shared layers)."""
    prefix, rest = split_head(head_of(classifier))
    pixels = keras.Input(classifier.input_shape[1:], name="pixels")
    x = pixels
    for layer in preprocessing_of(classifier):
        x = layer(x)
    x = classifier.get_layer(BASE_LAYER)(x, training=False)
    for layer in prefix:
        x = layer(x)
    extractor = keras.Model(pixels, x, name="feature_extractor")
    features = keras.Input(x.shape[1:], name="features")
    y = features
    for layer in rest:
        y = layer(y)
    y = classifier.get_layer(PROBABILITIES_LAYER)(y)
    return extractor, keras.Model(features, y, name="head_on_features")


def split_base(base: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """(bottom, top) of a base whose top layers train: `bottom` ends at the deepest tensor
    below the first layer with trainable weights through which everything above it is
    computed, `top` runs from there to the base's output (the base's own layers). None
    when nothing is frozen, nothing trains, or no such tensor exists."""
    layers = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    first = next((index for index, layer in enumerate(layers) if layer.trainable_weights), None)
    if not first:  # None: nothing trains; 0: nothing below the trainable part
        return None
    for cut in reversed(layers[:first]):
        try:  # a layer called twice has no single output tensor: Keras refuses `.output`
            top = keras.Model(cut.output, base.output, name="base_top")
        except (AttributeError, ValueError):  # or "Graph disconnected": a connection skips past it
            continue
        in_top = {id(layer) for layer in top.layers}
        if any(layer.trainable_weights for layer in layers if id(layer) not in in_top):
            continue
        return keras.Model(base.input, cut.output, name="base_bottom"), top
    return None


def build_fine_tune_extractor_and_top(classifier: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """pixels -> activations at the frozen part's end, and activations -> probabilities
    (the top of the base, then the head; shared layers), or None (split_base)."""
    base = classifier.get_layer(BASE_LAYER)
    split = split_base(base)
    if split is None:
        return None
    bottom, top = split
    pixels = keras.Input(classifier.input_shape[1:], name="pixels")
    x = pixels
    for layer in preprocessing_of(classifier):
        x = layer(x)
    extractor = keras.Model(pixels, bottom(x, training=False), name="frozen_part")
    activations = keras.Input(extractor.output.shape[1:], name="activations")
    # training=False as the classifier calls its base: BatchNorm and the base's own
    # dropout stay in inference mode while fine-tuning (training.model_builder).
    y = top(activations, training=False)
    for layer in head_of(classifier):
        y = layer(y)
    y = classifier.get_layer(PROBABILITIES_LAYER)(y)
    return extractor, keras.Model(activations, y, name="top_on_activations")


def cache_bytes(extractor: keras.Model, count: int) -> int:
    """What `count` cached outputs of `extractor` take in memory (float32)."""
    return count * int(np.prod(extractor.output.shape[1:])) * 4


def stage_models(classifier: keras.Model, stage: int, count: int) -> tuple[keras.Model, keras.Model, str] | None:
    """(extractor, model to fit on its outputs, what is cached) for a stage of a frozen
    pretrained base without augmentation, or None when this stage cannot use a cache:
    fine-tuning with no frozen tensor to cut at, or activations of `count` images over
    the memory budget (said on stderr: the stage then computes them every epoch, as with
    augmentation: augmented_inputs)."""
    models = frozen_split(classifier, stage)
    if models is None or stage == 1:
        return models
    needed, budget = cache_bytes(models[0], count), decoded_cache.memory_budget_bytes()
    if needed > budget:
        print(
            f"fine-tuning: activations below the unfrozen layers would take {needed / 2**20:.0f} MiB "
            f"(budget {budget / 2**20:.0f} MiB, {decoded_cache.BUDGET_VARIABLE}); they are computed again every epoch",
            file=sys.stderr,
            flush=True,
        )
        return None
    return models


def cached_inputs(
    models: tuple[keras.Model, keras.Model, str],
    train_samples: list[data.Sample],
    val_samples: list[data.Sample],
    image_size: int,
    batch_size: int,
    num_classes: int,
    seed: int,
    class_weights: list[float] | None,
):
    """(model, training dataset, validation dataset) on outputs of the extractor computed once."""
    extractor, model, what = models
    part = frozen_part_for(extractor, train_samples or val_samples, image_size, batch_size, what)
    train_features, val_features = _extract_splits(
        part, (train_samples, val_samples), image_size, batch_size, what, "; the rest trains on the cache"
    )
    train_ds = cached_dataset(train_features, train_samples, num_classes, batch_size, True, seed, class_weights)
    val_ds = cached_dataset(val_features, val_samples, num_classes, batch_size, False, seed)
    return model, train_ds, val_ds


def augmented_inputs(classifier: keras.Model, stage: int, splits, sizes, num_classes: int, loss, train_pipeline):
    """(model, training dataset, validation dataset, first callbacks) for an augmented stage
    of a frozen pretrained base in one process, or None where the stage has no frozen part.

    On ONNX Runtime (training.frozen_engine) the frozen part runs on every augmented batch
    in the input pipeline, `model` is the rest of the network and validation runs on the
    frozen part's outputs computed once. On TensorFlow, `model` is None (fit the whole
    graph) and a CachedValidation callback scores validation on those outputs instead.
    `train_pipeline(frozen_part=None)` builds the augmented training batches."""
    (train_samples, val_samples), (image_size, batch_size) = splits, sizes
    split = frozen_split(classifier, stage) if train_samples else None
    if split is None:
        return None
    extractor, rest, what = split
    part = frozen_part_for(extractor, train_samples, image_size, batch_size, what)
    if part.engine == "onnxruntime":
        validation = cached_split(part, val_samples, image_size, batch_size, num_classes, f"validation: {what}")
        return rest, train_pipeline(part), validation, []
    validation = cached_validation(part, rest, val_samples, image_size, batch_size, num_classes, loss, what)
    if validation is None:
        return None
    return None, train_pipeline(), None, [validation]


def frozen_split(classifier: keras.Model, stage: int) -> tuple[keras.Model, keras.Model, str] | None:
    """(frozen part, the rest on its outputs, what the frozen part computes) for a stage of
    a frozen pretrained base, whatever the memory budget, or None (split_base)."""
    if stage == 1:
        return (*build_extractor_and_head(classifier), "frozen base: features")
    models = build_fine_tune_extractor_and_top(classifier)
    if models is None:
        return None
    cut = models[0].output.shape[1:]
    return (*models, f"fine-tuning: activations at the frozen layers' end ({'x'.join(map(str, cut))})")


def frozen_part_for(
    extractor: keras.Model, samples: list[data.Sample], image_size: int, batch_size: int, what: str
) -> frozen_engine.FrozenPart:
    """The extractor on its engine (training.frozen_engine), checked on the first batch of
    `samples` (decoded here, as they will be for the stage anyway)."""
    images = data.make_dataset(samples, image_size, batch_size, shuffle=False, seed=0, num_classes=1)
    check = next(images.as_numpy_iterator())[0]
    return frozen_engine.frozen_part(extractor, check, what)


def cached_split(
    part: frozen_engine.FrozenPart,
    samples: list[data.Sample],
    image_size: int,
    batch_size: int,
    num_classes: int,
    what: str,
):
    """The frozen part's outputs for a split that is never augmented (validation), computed
    once, as batches for fit; None for an empty split."""
    if not samples:
        return None
    [features] = _extract_splits(part, (samples,), image_size, batch_size, what)
    return cached_dataset(features, samples, num_classes, batch_size, False, 0)


def _extract_splits(part: frozen_engine.FrozenPart, splits, image_size: int, batch_size: int, what: str, then=""):
    """extract() for each split, saying on stderr what was cached and how long it took."""
    started = time.perf_counter()
    outputs = [extract(part, samples, image_size, batch_size) for samples in splits]
    count = sum(len(output) for output in outputs)
    print(
        f"{what} of {count} images cached in {time.perf_counter() - started:.1f} s{then}", file=sys.stderr, flush=True
    )
    return outputs


def extract(part, samples: list[data.Sample], image_size: int, batch_size: int) -> np.ndarray:
    """The frozen part's output for every sample, in order (`part`: a FrozenPart, or a
    Keras extractor, run on TensorFlow). The images come from the decoded cache
    (training.decoded_cache) when they fit: decoded here once, they serve the fine-tuning
    stage afterwards without reading a file again."""
    if isinstance(part, keras.Model):
        part = frozen_engine.FrozenPart(part)
    images = data.make_dataset(samples, image_size, batch_size, shuffle=False, seed=0, num_classes=1)
    outputs = [part(batch) for batch, _labels in images.as_numpy_iterator()]
    return np.concatenate(outputs) if outputs else np.zeros((0, *part.output_shape), np.float32)


def cached_dataset(
    features: np.ndarray,
    samples: list[data.Sample],
    num_classes: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    class_weights: list[float] | None = None,
):
    import tensorflow as tf

    labels = np.array([s.label for s in samples], dtype=np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(data.label_encoder(num_classes, (), class_weights))
    return dataset.prefetch(tf.data.AUTOTUNE)


class CachedValidation(keras.callbacks.Callback):
    """Validation scored on the frozen part's outputs, computed once for the stage.

    Validation images are never augmented, so while augmentation keeps the training split
    from being cached, the frozen part still computes the same outputs for the validation
    split every epoch. This callback scores the rest of the network on them instead and
    writes `val_loss` and `val_accuracy` into the epoch's logs, where fit's own validation
    would have put them; it must be the first callback, so every later one (the best
    checkpoint, early stopping, the history) reads them."""

    def __init__(self, model: keras.Model, dataset) -> None:
        super().__init__()
        self.validation_model, self.dataset = model, dataset

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        results = self.validation_model.evaluate(self.dataset, verbose=0, return_dict=True)
        logs.update({f"val_{name}": float(value) for name, value in results.items()})


def cached_validation(
    part: frozen_engine.FrozenPart,
    model: keras.Model,
    val_samples: list[data.Sample],
    image_size: int,
    batch_size: int,
    num_classes: int,
    loss: keras.losses.Loss,
    what: str,
) -> CachedValidation | None:
    """The stage's validation scored by `model` on `part`'s outputs for the validation split,
    computed once, or None without a validation split."""
    dataset = cached_split(part, val_samples, image_size, batch_size, num_classes, f"validation: {what}")
    if dataset is None:
        return None
    model.compile(loss=loss, metrics=["accuracy"])  # as the trained graph is compiled (Trainer._compile)
    return CachedValidation(model, dataset)
