"""The "unknown" score: how unlike the training images an input is, computed in the model graph.

Shipped method (measured against 1 - max softmax probability, energy, Mahalanobis at
the penultimate layer, relative Mahalanobis and k nearest neighbours in
training/ood_study.py; table in docs/unknown-inputs.md): the Mahalanobis distance of the
**pooled base features** (the base's last feature map, the one the cam uses, averaged
over height and width) to the nearest training-class mean, with one covariance shared by
the classes, estimated from the run's *training* images (recomputed at export from the
run's split.json) with Ledoit-Wolf shrinkage so that it stays invertible with a few
hundred images. It reads no logits, so the softmax temperature (training.calibration)
cannot move it, and it is the only method that rejected almost every photo, noise
image, flat colour, shape and letter shown to a digits model (AUROC 0.997-1.000).

In the graph it is `min_c ||f P - m_c||^2 / D` (f the pooled features, P a square root of
the shrunk precision, m_c = mu_c P, D the feature count): a mean, one matrix product, a
subtraction, a square and two reductions, all in float. Dividing by D keeps the numbers near 1 for any network, so fp16 files
neither overflow nor round it away. `training.precision` keeps these nodes in float in
int8 files (their names start with SCORE_NAME), as it keeps the softmax.

The threshold is chosen on the validation split: the score below which ACCEPT_RATE of
the validation images fall. The metadata also holds the validation scores at 101
quantiles so a reader can say what share of validation images any other threshold keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from convnet_common.unknown_score import QUANTILE_COUNT, UNKNOWN_OUTPUT

METHOD = "mahalanobis"
ACCEPT_RATE = 0.95
QUANTILES = QUANTILE_COUNT  # the validation scores at 0 %, 1 %, ... 100 %
SCORE_NAME = UNKNOWN_OUTPUT  # Keras layer name, and so part of its ONNX nodes' names
MAX_FIT_IMAGES = 4000  # training images whose features are fitted (all of a small run)


@dataclass(frozen=True)
class MahalanobisFit:
    """Class means and a projection P with P P^T = the shrunk shared precision."""

    means: np.ndarray  # [classes, D], in projected coordinates (mu_c @ P)
    projection: np.ndarray  # [D, D]
    shrinkage: float
    images: int

    @property
    def dimensions(self) -> int:
        return int(self.projection.shape[0])

    def summary(self) -> dict:
        return {
            "features": "pooled base feature map (mean over height and width)",
            "dimensions": self.dimensions,
            "classes": int(self.means.shape[0]),
            "covariance": "shared by the classes, Ledoit-Wolf shrinkage",
            "shrinkage": round(float(self.shrinkage), 6),
            "fit_images": self.images,
            "fit_split": "training",
            "scale": "squared distance / dimensions",
        }


def fit_mahalanobis(features: np.ndarray, labels: np.ndarray) -> MahalanobisFit:
    """Class means and Ledoit-Wolf-shrunk shared covariance of `features` (training images).

    Classes with no image get no mean (their rows would mean nothing); at least one class is needed.
    """
    from sklearn.covariance import ledoit_wolf

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(features) < 2:
        raise ValueError(f"need at least 2 feature rows with one label each, got {features.shape} / {labels.shape}")
    classes = [c for c in np.unique(labels)]
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    covariance, shrinkage = ledoit_wolf(centred, assume_centered=True)
    # A floor on the eigenvalues: a feature that never varied (a dead unit) must not divide by ~0.
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, max(float(values.max()), 1e-12) * 1e-6)
    projection = vectors / np.sqrt(values)  # P P^T = V diag(1/values) V^T = covariance^-1
    return MahalanobisFit(
        (means @ projection).astype(np.float32), projection.astype(np.float32), float(shrinkage), len(features)
    )


def mahalanobis_scores(fit: MahalanobisFit, features: np.ndarray) -> np.ndarray:
    """The shipped score in numpy (float64) from pooled features: squared distance to the nearest class / D."""
    projected = np.asarray(features, dtype=np.float64) @ fit.projection.astype(np.float64)
    squared = ((projected[:, None, :] - fit.means.astype(np.float64)[None]) ** 2).sum(axis=2)
    return squared.min(axis=1) / fit.dimensions


def threshold_record(validation_scores: np.ndarray, fit: MahalanobisFit, accept_rate: float = ACCEPT_RATE) -> dict:
    """The `unknown` metadata object (docs/model-format.md) for scores of the validation images."""
    scores = np.asarray(validation_scores, dtype=np.float64)
    if not len(scores) or not np.all(np.isfinite(scores)):
        raise ValueError("the unknown score needs finite scores for at least one validation image")
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, QUANTILES))
    threshold = float(np.quantile(scores, accept_rate))
    return {
        "method": METHOD,
        "threshold": _round(threshold),
        "accept_rate": accept_rate,
        "quantiles": [_round(q) for q in quantiles],
        "images": len(scores),
        "higher_is": "more unlike the training images",
        "parameters": fit.summary(),
    }


def _round(value: float) -> float:
    return float(f"{float(value):.7g}")


def metadata_value(record: dict) -> str:
    return json.dumps(record)


# --------------------------------------------------------------------------- Keras side


def tap_logits_input(classifier, inputs) -> tuple:
    """Re-run the classifier chain on float `inputs`: (base feature map, penultimate
    features, logits, probabilities), the same layers and order as model_builder."""
    from training.model_builder import BASE_LAYER, LOGITS_LAYER, _chain

    x = inputs
    feature_map = penultimate = logits = None
    for layer in _chain(classifier):
        if layer.name == LOGITS_LAYER:
            penultimate = x
        x = layer(x, training=False) if layer.name == BASE_LAYER else layer(x)
        if layer.name == BASE_LAYER:
            feature_map = x
        elif layer.name == LOGITS_LAYER:
            logits = x
    return feature_map, penultimate, logits, x


def feature_model(classifier):
    """uint8 images -> [pooled base features, penultimate features, logits], for fitting and studies."""
    import keras

    image = keras.Input(classifier.input_shape[1:], dtype="uint8", name="image")
    feature_map, penultimate, logits, _ = tap_logits_input(classifier, keras.ops.cast(image, "float32"))
    pooled = keras.ops.mean(feature_map, axis=(1, 2))
    return keras.Model(image, [pooled, penultimate, logits], name="unknown_features")


def pooled_features(classifier, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    pooled, _, _ = feature_model(classifier).predict(images, verbose=0, batch_size=batch_size)
    return pooled


def score_layer(fit: MahalanobisFit):
    """A Keras layer: the base's feature map [N, h, w, D] -> unknown_score [N] (float32)."""
    import keras

    class UnknownScore(keras.layers.Layer):
        """min_c ||mean(map) P - m_c||^2 / D; the constants are the fit's, frozen into the graph."""

        def __init__(self, **kwargs):
            super().__init__(name=SCORE_NAME, **kwargs)
            self.projection = fit.projection.astype(np.float32)
            self.means = fit.means.astype(np.float32)

        def call(self, feature_map):
            ops = keras.ops
            pooled = ops.mean(ops.cast(feature_map, "float32"), axis=(1, 2))
            projected = ops.matmul(pooled, ops.convert_to_tensor(self.projection))
            difference = ops.expand_dims(projected, 1) - ops.expand_dims(ops.convert_to_tensor(self.means), 0)
            squared = ops.sum(ops.square(difference), axis=2)
            return ops.min(squared, axis=1) / float(fit.dimensions)

    return UnknownScore()


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportScore:
    """What export needs: the fit (for the graph) and the `unknown` metadata record."""

    fit: MahalanobisFit
    record: dict
    validation_scores: np.ndarray

    def layer(self):
        return score_layer(self.fit)


def _features_in_chunks(classifier, samples, image_size: int, chunk: int = 256) -> np.ndarray:
    """Pooled features of `samples`, decoding `chunk` images at a time (a big run's split
    does not fit in memory as pixels at 224 x 224)."""
    from training import data

    model = feature_model(classifier)
    parts = []
    for start in range(0, len(samples), chunk):
        images, _ = data.load_batch(samples[start : start + chunk], image_size)
        parts.append(model.predict(images, verbose=0, batch_size=64)[0])
    return np.concatenate(parts)


def prepare_for_export(classifier, split: dict, image_size: int, accept_rate: float = ACCEPT_RATE) -> ExportScore:
    """Fit on the run's training split (at most MAX_FIT_IMAGES, a seeded pick) and set the
    threshold on its whole validation split, from the features the exported graph computes."""
    from training import data

    train = [data.Sample(path, label) for path, label in split["train"]]
    if len(train) > MAX_FIT_IMAGES:
        picks = np.sort(np.random.default_rng(0).permutation(len(train))[:MAX_FIT_IMAGES])
        train = [train[i] for i in picks]
    val = [data.Sample(path, label) for path, label in split["val"]]
    fit = fit_mahalanobis(
        _features_in_chunks(classifier, train, image_size), np.array([s.label for s in train], dtype=np.int64)
    )
    scores = mahalanobis_scores(fit, _features_in_chunks(classifier, val, image_size))
    return ExportScore(fit, threshold_record(scores, fit, accept_rate), scores)


# How far a file's unknown_score may be from Keras's, relative to max(1, |score|). fp32
# only reorders float sums (measured 7e-6); fp16 rounds the features (8e-3). int8 keeps
# the score's own nodes in float (training.precision.KEEP_FLOAT_NODES) but the feature map
# in front of it is quantised to 8 bits, and whitening magnifies the rounding in the
# feature directions that barely vary: 0.4 on the LeNet-5 fixture, where it still
# separates unknown images (AUROC ~0.99) but moves validation images near the threshold.
SCORE_TOLERANCE = {"fp32": 1e-3, "fp16": 0.05, "int8": 0.75}


def score_difference(expected: np.ndarray, actual: np.ndarray) -> float:
    """Largest |actual - expected| / max(1, |expected|): relative for large scores, absolute near 0."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return float("inf")
    return float(np.max(np.abs(actual - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0))


def onnx_scores(session, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The file's `unknown_score` for `images` (an ONNX Runtime session)."""
    name = session.get_inputs()[0].name
    parts = [
        session.run([UNKNOWN_OUTPUT], {name: images[i : i + batch_size]})[0] for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts)
