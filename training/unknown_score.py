"""The "unknown" score: how unlike the training images an input is, computed in the model graph.

Shipped method (measured against 1 - max softmax probability, energy, Mahalanobis at
the penultimate layer, relative Mahalanobis and k nearest neighbours in
training/ood_study.py; table in docs/unknown-inputs.md): the Mahalanobis distance of
feature vector f to the nearest training-class mean, with one covariance shared by the
classes, estimated from the run's *training* images (recomputed at export from the run's
split.json) with Ledoit-Wolf shrinkage so that it stays invertible with a few hundred
images. f is, for networks where it has at most MAX_LAYERED_DIMENSIONS numbers and runs
with LAYERED_IMAGES_PER_DIMENSION training images per number, the
**mean and standard deviation over height and width of the base's last feature map**
(the one the cam uses) together with the **penultimate features** (the logits layer's
input); otherwise, the spatial mean alone (a D x D matrix sits in the file, and a
larger covariance needs more images to estimate).
The spread and the penultimate layer are what tell a varied digits training set (fonts,
both polarities, pen strokes) from photo crops: on the bundled model the spatial mean
alone let 16 % of photo crops through at a 99 % validation threshold, the layered vector
1-3 %. It reads no logits, so the softmax temperature (training.calibration) cannot move
it.

In the graph it is `min_c ||f P - m_c||^2 / D` (f the feature vector, P a square root of
the shrunk precision, m_c = mu_c P, D the feature count): a mean, one matrix product, a
subtraction, a square and two reductions, all in float. Dividing by D keeps the numbers near 1 for any network, so fp16 files
neither overflow nor round it away. `training.precision` keeps these nodes in float in
int8 files (their names start with SCORE_NAME), as it keeps the softmax.

The threshold is chosen on the validation split: the score below which ACCEPT_RATE of
the validation images fall. The metadata also holds the validation scores at 101
quantiles so a reader can say what share of validation images any other threshold keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convnet_common.unknown_score import QUANTILE_COUNT, UNKNOWN_OUTPUT

METHOD = "mahalanobis"
ACCEPT_RATE = 0.95
QUANTILES = QUANTILE_COUNT  # the validation scores at 0 %, 1 %, ... 100 %
SCORE_NAME = UNKNOWN_OUTPUT  # Keras layer name, and so part of its ONNX nodes' names
MAX_FIT_IMAGES = 4000  # training images whose features are fitted (all of a small run)
# The layered vector (spatial mean + spatial std of the base map + penultimate features) is
# used up to this many numbers (LeNet-5: 16 + 16 + 84 = 116); above it, the spatial mean
# alone (MobileNetV2: 1,280), so the projection stays a few MB in the file.
MAX_LAYERED_DIMENSIONS = 512
FEATURES_LAYERED = "layered"
FEATURES_POOLED = "pooled"
FEATURE_DESCRIPTIONS = {
    FEATURES_LAYERED: "base feature map's mean and standard deviation over height and width, "
    "and the penultimate features",
    FEATURES_POOLED: "pooled base feature map (mean over height and width)",
}


# ... and only when the run has this many training images per number: a shared covariance
# of 116 numbers fitted on 480 images (the tests' tiny runs) let 7-29 % of drawn letters
# through where the 16-number mean let none (python -m training.ood_study); on the bundled
# model's 11,000 it refuses 98.7 % of photo crops where the mean refuses 83.5 %.
LAYERED_IMAGES_PER_DIMENSION = 20


def feature_kind(channels: int, penultimate: int, images: int) -> str:
    """Which feature vector a network's score uses (see the module docstring)."""
    dimensions = 2 * channels + penultimate
    if dimensions <= MAX_LAYERED_DIMENSIONS and images >= LAYERED_IMAGES_PER_DIMENSION * dimensions:
        return FEATURES_LAYERED
    return FEATURES_POOLED


def score_vector(kind: str, pooled: np.ndarray, spread: np.ndarray, penultimate: np.ndarray) -> np.ndarray:
    """The vector the score measures, from the three feature taps (numpy, for fitting)."""
    if kind == FEATURES_LAYERED:
        return np.concatenate([pooled, spread, penultimate], axis=1)
    return pooled


@dataclass(frozen=True)
class MahalanobisFit:
    """Class means and a projection P with P P^T = the shrunk shared precision."""

    means: np.ndarray  # [classes, D], in projected coordinates (mu_c @ P)
    projection: np.ndarray  # [D, D]
    shrinkage: float
    images: int
    features: str = FEATURES_POOLED  # which vector (FEATURE_DESCRIPTIONS)

    @property
    def dimensions(self) -> int:
        return int(self.projection.shape[0])

    def summary(self) -> dict:
        return {
            "features": FEATURE_DESCRIPTIONS[self.features],
            "dimensions": self.dimensions,
            "classes": int(self.means.shape[0]),
            "covariance": "shared by the classes, Ledoit-Wolf shrinkage",
            "shrinkage": round(float(self.shrinkage), 6),
            "fit_images": self.images,
            "fit_split": "training",
            "scale": "squared distance / dimensions",
        }


def fit_mahalanobis(features: np.ndarray, labels: np.ndarray, kind: str = FEATURES_POOLED) -> MahalanobisFit:
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
        (means @ projection).astype(np.float32), projection.astype(np.float32), float(shrinkage), len(features), kind
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


# --------------------------------------------------------------------------- Keras side


def feature_model(classifier):
    """uint8 images -> [spatial mean of the base map, penultimate features, logits, spatial
    std of the base map], for fitting and studies."""
    import keras

    from training.model_builder import chain_outputs

    image = keras.Input(classifier.input_shape[1:], dtype="uint8", name="image")
    feature_map, penultimate, logits, _ = chain_outputs(classifier, keras.ops.cast(image, "float32"))
    penultimate = _as_vector(keras.ops, penultimate)
    pooled = keras.ops.mean(feature_map, axis=(1, 2))
    spread = keras.ops.std(feature_map, axis=(1, 2))
    return keras.Model(image, [pooled, penultimate, logits, spread], name="unknown_features")


def _as_vector(ops, penultimate):
    """Penultimate features as [N, P]: a map (allconv's class maps before their global
    average) is averaged over its spatial axes, as the network itself does next."""
    rank = len(penultimate.shape)
    return ops.mean(penultimate, axis=tuple(range(1, rank - 1))) if rank > 2 else penultimate


def score_inputs(classifier, images: np.ndarray, kind: str, batch_size: int = 64) -> np.ndarray:
    """The vector a score of `kind` measures for `images` (numpy)."""
    pooled, penultimate, _, spread = feature_model(classifier).predict(images, verbose=0, batch_size=batch_size)
    return score_vector(kind, pooled, spread, penultimate)


def score_layer(fit: MahalanobisFit):
    """A Keras layer: (base feature map [N, h, w, C], penultimate [N, P]) -> unknown_score [N] (float32)."""
    import keras

    class UnknownScore(keras.layers.Layer):
        """min_c ||f P - m_c||^2 / D; the constants are the fit's, frozen into the graph."""

        def __init__(self, **kwargs):
            super().__init__(name=SCORE_NAME, **kwargs)
            self.projection = fit.projection.astype(np.float32)
            self.means = fit.means.astype(np.float32)

        def call(self, feature_map, penultimate):
            ops = keras.ops
            feature_map = ops.cast(feature_map, "float32")
            vector = ops.mean(feature_map, axis=(1, 2))
            if fit.features == FEATURES_LAYERED:
                spread = ops.std(feature_map, axis=(1, 2))
                penultimate = _as_vector(ops, ops.cast(penultimate, "float32"))
                vector = ops.concatenate([vector, spread, penultimate], axis=1)
            projected = ops.matmul(vector, ops.convert_to_tensor(self.projection))
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


def _features_in_chunks(classifier, samples, image_size: int, kind: str, chunk: int = 256) -> np.ndarray:
    """Score vectors of `samples`, decoding `chunk` images at a time (a big run's split
    does not fit in memory as pixels at 224 x 224)."""
    from training import data

    model = feature_model(classifier)
    parts = []
    for start in range(0, len(samples), chunk):
        images, _ = data.load_batch(samples[start : start + chunk], image_size)
        pooled, penultimate, _, spread = model.predict(images, verbose=0, batch_size=64)
        parts.append(score_vector(kind, pooled, spread, penultimate))
    return np.concatenate(parts)


def network_feature_kind(classifier, images: int) -> str:
    """The feature vector this classifier's score uses, from its tap widths and the number
    of training images fitted."""
    model = feature_model(classifier)
    channels, penultimate = int(model.outputs[0].shape[-1]), int(np.prod(model.outputs[1].shape[1:]))
    return feature_kind(channels, penultimate, images)


def prepare_for_export(classifier, split: dict, image_size: int, accept_rate: float = ACCEPT_RATE) -> ExportScore:
    """Fit on the run's training split (at most MAX_FIT_IMAGES, a seeded pick) and set the
    threshold on its whole validation split, from the features the exported graph computes."""
    from training import data

    train = [data.Sample(path, label) for path, label in split["train"]]
    if len(train) > MAX_FIT_IMAGES:
        picks = np.sort(np.random.default_rng(0).permutation(len(train))[:MAX_FIT_IMAGES])
        train = [train[i] for i in picks]
    val = [data.Sample(path, label) for path, label in split["val"]]
    kind = network_feature_kind(classifier, len(train))
    fit = fit_mahalanobis(
        _features_in_chunks(classifier, train, image_size, kind),
        np.array([s.label for s in train], dtype=np.int64),
        kind,
    )
    scores = mahalanobis_scores(fit, _features_in_chunks(classifier, val, image_size, kind))
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
