"""Adopted models in the window: the Classify tab and the Batch tab give the original's top-1.

Issue 15 asks that each adopted model give the same top-1 as the original run directly,
through `convnet-classify` (tests/training/adopt/test_adopt_onnx.py), the Batch tab and
Classify (here). The originals are foreign ONNX classifiers laid out as PyTorch/timm, Keras
(NHWC, -1...1) and float16 exports write them; `convnet-train adopt` (ONNX sources need no
TensorFlow) makes the ConvNet Studio file; the truth is the original file run by ONNX Runtime
on pixels preprocessed in numpy as its tool documents it (adopt_factory, independent of the
adoption pipeline). The images are drawn at the model's own size, so no resize is involved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ADOPT_TESTS = Path(__file__).resolve().parents[2] / "training" / "adopt"
if str(ADOPT_TESTS) not in sys.path:
    sys.path.insert(0, str(ADOPT_TESTS))

from adopt_factory import foreign_classifier, original_probabilities, sample_images  # noqa: E402 - after the sys.path line above

from desktop.qt.batch_view import BatchView  # noqa: E402 - below the sys.path set-up, with the imports it orders after

WAIT_MS = 30_000
SIZE = 24
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

CASES = {
    # name: (foreign_classifier keywords, mean/std, flags beyond mean/std)
    "pytorch-nchw-logits": ({"layout": "nchw"}, IMAGENET, []),
    "keras-nhwc-minus1-1": ({"layout": "nhwc", "seed": 4}, HALF, []),
    "softmax-output": ({"layout": "nchw", "softmax": True, "seed": 7}, IMAGENET, []),
    "float16-input": ({"layout": "nchw", "dtype": "float16", "seed": 6}, IMAGENET, []),
}


def _write_images(folder: Path, images: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        path = folder / f"picture-{index:02d}.png"
        assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


@pytest.fixture(params=sorted(CASES))
def adopted(request, tmp_path: Path):
    """(adopted model, image paths, the original's top-1 per image name, class names)."""
    from training import cli

    keywords, (mean, std), extra = CASES[request.param]
    source = foreign_classifier(tmp_path / f"{request.param}.onnx", size=SIZE, classes=5, **keywords)
    labels = ["apple", "banana", "cherry", "date", "elder"]
    (tmp_path / "names.txt").write_text("\n".join(labels) + "\n")
    out = tmp_path / f"{request.param}-adopted.onnx"
    argv = ["adopt", str(source), "--out", str(out), "--labels", str(tmp_path / "names.txt")]
    argv += ["--mean", *map(str, mean), "--std", *map(str, std), *extra]
    assert cli.main(argv) == 0 and out.is_file()
    images = sample_images(SIZE, count=10, seed=11)
    expected = original_probabilities(
        source,
        images,
        keywords["layout"],
        mean,
        std,
        dtype=keywords.get("dtype", "float32"),
        logits=not keywords.get("softmax", False),
    ).argmax(1)
    assert len(set(expected.tolist())) > 1, "the images must not all fall in one class"
    paths = _write_images(tmp_path / "pictures", images)
    return out, paths, {p.name: labels[i] for p, i in zip(paths, expected)}, labels


def test_classify_and_batch_give_the_originals_top1(qtbot, window, adopted) -> None:
    model, paths, truth, labels = adopted
    window.open_model(model)
    qtbot.waitUntil(lambda: window.controller.model is not None, timeout=WAIT_MS)
    assert not window.errors, window.errors
    assert window.controller.model.info.labels == labels

    for path in paths:  # Classify, one picture at a time
        window.open_images([path])
        qtbot.waitUntil(
            lambda: (
                getattr(getattr(window.classify_view.current, "path", None), "name", "") == path.name
                and window.classify_view.current.probabilities is not None
            ),
            timeout=WAIT_MS,
        )
        assert window.classify_view.current.top_label == truth[path.name], path.name

    batch = window.view(BatchView)
    batch.ask_resume = lambda *args, **kwargs: "restart"
    window.show_tab(batch)
    assert batch.start_folder(paths[0].parent)
    qtbot.waitUntil(lambda: not batch.running and len(batch.results()) == len(paths), timeout=WAIT_MS)
    got = {result.path.name: result.label for result in batch.results()}
    assert got == truth


@pytest.mark.slow
def test_a_teachable_machine_export_in_the_window(qtbot, window, tmp_path: Path) -> None:
    """A Teachable-Machine-shaped keras_model.h5 + labels.txt, adopted with no flags: the
    window gives Keras's own answers on the same pixels scaled as TM does (x / 127.5 - 1)."""
    keras_tests = Path(__file__).resolve().parents[2] / "training" / "adopt_keras"
    sys.path.insert(0, str(keras_tests))
    try:
        from foreign_keras_models import SIZE as TM_SIZE
        from foreign_keras_models import images, make_teachable_machine
    finally:
        sys.path.remove(str(keras_tests))
    from training import cli
    from training.adopt.keras_source import load_keras_model  # with the stand-in for TM's `groups` key

    folder = make_teachable_machine(tmp_path / "converted_keras")
    out = tmp_path / "tm-adopted.onnx"
    assert cli.main(["adopt", str(folder), "--out", str(out)]) == 0
    pixels = np.round((images(-1, 1, 12, seed=21, size=TM_SIZE) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    original = load_keras_model(folder / "keras_model.h5")
    expected = np.asarray(original(pixels.astype(np.float32) / 127.5 - 1, training=False)).argmax(1)
    assert len(set(expected.tolist())) > 1
    paths = _write_images(tmp_path / "pictures", pixels)  # square at the model's size: TM's crop keeps all
    truth = {p.name: ("cat", "dog")[i] for p, i in zip(paths, expected)}

    window.open_model(out)
    qtbot.waitUntil(lambda: window.controller.model is not None, timeout=WAIT_MS)
    assert not window.errors, window.errors
    batch = window.view(BatchView)
    batch.ask_resume = lambda *args, **kwargs: "restart"
    window.show_tab(batch)
    assert batch.start_folder(paths[0].parent)
    qtbot.waitUntil(lambda: not batch.running and len(batch.results()) == len(paths), timeout=WAIT_MS)
    assert {r.path.name: r.label for r in batch.results()} == truth
    window.open_images([paths[0]])
    qtbot.waitUntil(lambda: window.classify_view.current is not None, timeout=WAIT_MS)
    assert window.classify_view.current.top_label == truth[paths[0].name]
