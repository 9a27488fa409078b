"""Frozen-base epochs on cached features.

While the base is frozen and no augmentation is on, the base computes the same features
for an image every epoch. Computing them once and training only the head on the cache
turns each epoch from a full forward pass through the backbone into a few matrix
products. The head layers are the classifier's own, so training them here trains the
classifier; benchmarks/bench_feature_cache.py measures the speed-up.
"""

from __future__ import annotations

import keras
import numpy as np

from training import data
from training.model_builder import BASE_LAYER, PROBABILITIES_LAYER, head_of

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
    for layer in classifier.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        x = layer(x, training=False) if layer.name == BASE_LAYER else layer(x)
        if layer.name == BASE_LAYER:
            break
    for layer in prefix:
        x = layer(x)
    extractor = keras.Model(pixels, x, name="feature_extractor")
    features = keras.Input(x.shape[1:], name="features")
    y = features
    for layer in rest:
        y = layer(y)
    y = classifier.get_layer(PROBABILITIES_LAYER)(y)
    return extractor, keras.Model(features, y, name="head_on_features")


def extract(extractor: keras.Model, samples: list[data.Sample], image_size: int, batch_size: int) -> np.ndarray:
    """The extractor's output for every sample, in order. The images come from the
    decoded cache (training.decoded_cache) when they fit: decoded here once, they serve
    the fine-tuning stage afterwards without reading a file again."""
    import tensorflow as tf

    images = data.make_dataset(samples, image_size, batch_size, shuffle=False, seed=0, num_classes=1)
    return extractor.predict(images.map(lambda x, y: x, num_parallel_calls=tf.data.AUTOTUNE), verbose=0)


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
