"""Turn RGB images into predictions with a loaded model.

Preprocessing is only decoding to the input size (`decode_for_model`, the function
training uses) or, for in-memory images, `fit_to_model`: the model graph does
everything else, so the app cannot drift from how the model was trained. Both follow the
model's resize mode (`info.resize`: stretch, or an adopted model's shorter-side resize
and centre crop), so files, frames, batches and the CLI see the same part of a picture.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convnet_common.imaging import (
    ImageReadError,
    decode_for_display_and_model,
    decode_for_model,
    fit_to_model,
    read_image_bytes,
)
from convnet_common.model_contract import answer_problems
from convnet_common.resize_mode import crop_box
from convnet_common.unknown_score import score_problems
from desktop.core.model import LoadedModel

DEFAULT_TOP_K = 5


@dataclass
class Prediction:
    """The outcome for one image: either top-k classes or an `error` message, never both.

    `unknown_score` is the model's score (None for a model without one) and `unknown`
    the verdict against the threshold in force when it was classified: True when the
    image is unlike the training data, None when there is no score.
    """

    path: Path | None
    image: np.ndarray | None
    top_k: list[tuple[str, float]]
    probabilities: np.ndarray | None
    cam: np.ndarray | None
    inference_ms: float
    error: str | None = None
    unknown_score: float | None = None
    unknown: bool | None = None
    unknown_threshold: float | None = None  # what `unknown` was judged against, for display
    # The part of `image` the model saw (top, left, height, width as fractions), for a
    # centre-cropping model; None: the whole image. Maps are drawn over this part only.
    map_region: tuple[float, float, float, float] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def top_label(self) -> str | None:
        return self.top_k[0][0] if self.top_k else None

    @property
    def top_index(self) -> int | None:
        return int(np.argmax(self.probabilities)) if self.probabilities is not None else None

    def judge(self, threshold: float | None) -> None:
        """Judge the score again against `threshold` (the user moved it); no score: nothing to do."""
        if self.unknown_score is not None and threshold is not None:
            self.unknown, self.unknown_threshold = bool(self.unknown_score > threshold), threshold

    @classmethod
    def failed(cls, path: Path | None, error: str) -> Prediction:
        return cls(path=path, image=None, top_k=[], probabilities=None, cam=None, inference_ms=0.0, error=error)


class Classifier:
    """Classify images with one `LoadedModel`; safe to share between worker threads."""

    def __init__(self, model: LoadedModel, top_k: int = DEFAULT_TOP_K) -> None:
        self.model = model
        self.top_k = top_k

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Model input for in-memory images (camera frames, pasted pictures): a resize (and crop) only."""
        height, width = self.model.input_size
        resize = self.model.info.resize
        return np.stack([fit_to_model(image, height, width, resize) for image in images]).astype(np.uint8, copy=False)

    def classify_batch(
        self,
        images: Sequence[np.ndarray | None],
        paths: Sequence[Path | None] | None = None,
        top_k: int | None = None,
        *,
        inputs: np.ndarray | None = None,
        throughput: bool = False,
    ) -> list[Prediction]:
        """Classify several images in one run; inference time is split evenly among them.

        `inputs` is the ready model input when the caller decoded it from the file itself
        (see convnet_common.imaging.decode_for_model); `images` are then only kept for
        display and may be None. `throughput` runs on the folder-run session.
        """
        count = len(inputs) if inputs is not None else len(images)
        if not count:
            return []
        paths = list(paths) if paths is not None else [None] * count
        k = min(top_k or self.top_k, len(self.model.info.labels))
        labels = self.model.info.labels
        batch = inputs if inputs is not None else self.preprocess(images)
        started = time.perf_counter()
        answers = self.model.predict_all(batch, throughput=throughput)
        probabilities, cams, scores = answers.probabilities, answers.cam, answers.unknown_score
        per_image_ms = (time.perf_counter() - started) * 1000.0 / count
        predictions = []
        problems = answer_problems(probabilities, cams)
        if scores is not None:  # a NaN score is an error for that image, never a verdict
            score_checks = score_problems(scores, count)
            if isinstance(score_checks, str):
                problems = [score_checks] * count
            else:
                problems = [p if p is not None else s for p, s in zip(problems, score_checks)]
        for i, (image, path) in enumerate(zip(images, paths)):
            if problems[i] is not None:  # NaN, 231, a row not summing to 1: an error, never a prediction
                predictions.append(Prediction.failed(path, problems[i]))
                continue
            probs = probabilities[i]
            score = float(scores[i]) if scores is not None else None
            order = np.argsort(-probs, kind="stable")[:k]
            predictions.append(
                Prediction(
                    path=path,
                    image=image,
                    top_k=[(labels[j], float(probs[j])) for j in order],
                    probabilities=probs,
                    cam=cams[i] if cams is not None else None,
                    inference_ms=per_image_ms,
                    unknown_score=score,
                    unknown=self.model.is_unknown(score),
                    unknown_threshold=self.model.unknown_threshold if score is not None else None,
                    map_region=self.map_region(image),
                )
            )
        return predictions

    def map_region(self, image: np.ndarray | None) -> tuple[float, float, float, float] | None:
        """The crop box of `image` as fractions (see Prediction.map_region); None when the model stretches."""
        resize = self.model.info.resize
        if image is None or not resize.crops:
            return None
        image_height, image_width = image.shape[:2]
        top, left, box_height, box_width = crop_box(image_height, image_width, *self.model.input_size, resize)
        return top / image_height, left / image_width, box_height / image_height, box_width / image_width

    def classify_image(self, image: np.ndarray, path: Path | None = None, top_k: int | None = None) -> Prediction:
        return self.classify_batch([image], [path], top_k)[0]

    def read_file(self, path: str | os.PathLike[str], keep_image: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """(full image for display or None, model input) for one file; ImageReadError if unreadable.

        The bytes are read once; the model input comes from decode_for_model, exactly as
        in training, and costs no more than resizing the full image would.
        """
        data = read_image_bytes(path)
        height, width = self.model.input_size
        resize = self.model.info.resize
        if keep_image:
            return decode_for_display_and_model(data, height, width, str(path), resize)
        return None, decode_for_model(data, height, width, str(path), resize)

    def classify_path(self, path: str | os.PathLike[str], top_k: int | None = None) -> Prediction:
        """Read and classify one file; an unreadable file gives a Prediction with `error` set."""
        path = Path(path)
        try:
            image, model_input = self.read_file(path)
        except ImageReadError as error:
            return Prediction.failed(path, str(error))
        return self.classify_batch([image], [path], top_k, inputs=model_input[None])[0]
