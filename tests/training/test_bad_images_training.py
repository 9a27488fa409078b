"""The bad-image corpus through the training data loader: every bad file is skipped and
listed with a one-line reason, the good ones are all training data, and a batch decodes.

Permission denied is simulated at os.open (tests run as root; see tests/bad_images.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from bad_images import GREEN, UNREADABLE, Case, build_corpus, deny_reading, encode, file_cases, mostly

from convnet_common.imaging import resize_for_model
from training import data

SIZE = 32


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Case]]:
    """Two class folders: `corpus` (every case) and `plain` (three good pictures)."""
    root = tmp_path / "data"
    cases = build_corpus(root / "corpus")
    for index in range(3):
        (root / "plain").mkdir(parents=True, exist_ok=True)
        (root / "plain" / f"{index}.png").write_bytes(encode(mostly(GREEN), "PNG"))
    deny_reading(monkeypatch, [root / "corpus" / UNREADABLE])
    return root, cases


def test_scan_skips_every_bad_file_with_its_reason(dataset) -> None:
    root, cases = dataset
    folder = root / "corpus"
    scanned = data.scan_class_folders(root)
    assert scanned.class_names == ["corpus", "plain"]

    good = {str(folder / name) for name, case in file_cases(cases).items() if not case.must_fail}
    bad = {str(folder / name): case for name, case in file_cases(cases).items() if case.must_fail}
    assert {s.path for s in scanned.samples} == good | {str(root / "plain" / f"{i}.png") for i in range(3)}
    assert all(s.label == (0 if s.path in good else 1) for s in scanned.samples)
    assert len(scanned.samples) == len({s.path for s in scanned.samples})  # the link loop repeats nothing

    reasons = dict(scanned.skipped)
    assert set(reasons) == set(bad) and len(scanned.skipped) == len(bad)
    problems = []
    for path, case in bad.items():
        reason = reasons[path]
        if "\n" in reason or reason.startswith(path) or not all(word in reason for word in case.words):
            problems.append(f"{case.name}: reason {reason!r} must be one line with {case.words}, without the path")
    assert not problems, "\n".join(problems)
    data.validate_for_training(scanned, root)  # two classes with readable images: trainable


def test_good_files_decode_upright_for_training(dataset) -> None:
    root, cases = dataset
    scanned = data.scan_class_folders(root)
    images, labels = data.load_batch(scanned.samples, SIZE)
    assert images.shape == (len(scanned.samples), SIZE, SIZE, 3) and images.dtype == np.uint8
    assert labels.tolist() == [s.label for s in scanned.samples]
    problems = []
    for image, sample in zip(images, scanned.samples):
        case = cases.get(Path(sample.path).name) if sample.label == 0 else None
        if case is None:
            continue
        seen_colour = ("red", "green", "blue")[int(image.reshape(-1, 3).mean(0).argmax())]
        if case.colour is not None and seen_colour != case.colour:
            problems.append(f"{case.name}: training sees the wrong colour")
        if case.upright is not None:
            expected = resize_for_model(case.upright, SIZE, SIZE)
            if np.abs(image.astype(int) - expected.astype(int)).mean() > case.tolerance + 3.0:
                problems.append(f"{case.name}: training does not see the upright, composited picture")
    assert not problems, "\n".join(problems)


def test_a_file_that_breaks_after_the_scan_is_announced_not_fatal(dataset, capfd) -> None:
    root, _ = dataset
    scanned = data.scan_class_folders(root)
    samples = scanned.samples
    broken = Path(samples[0].path)
    broken.write_bytes(b"<html>gone</html>")
    batches = data.make_dataset(samples, SIZE, batch_size=len(samples), shuffle=False, seed=0, num_classes=2)
    images, labels = next(iter(batches))
    assert images.shape == (len(samples), SIZE, SIZE, 3) and labels.shape == (len(samples), 2)
    assert float(images[0].numpy().max()) == 0.0  # the stand-in, in its place: features stay aligned
    assert float(images[1].numpy().max()) > 0.0
    err = capfd.readouterr().err
    assert f"warning: {broken}: not a readable image: the file holds HTML text" in err


def test_names_that_are_not_utf8_are_skipped_or_refused_by_name(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in (b"a/ok.png", b"a/caf\xe9.png", b"b/ok.png"):
        path = Path(os.fsdecode(os.fsencode(root) + b"/" + name))
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(encode(mostly(GREEN), "PNG"))
        except (OSError, UnicodeError):
            pytest.skip("this file system refuses file names that are not UTF-8")
    scanned = data.scan_class_folders(root)
    assert [Path(s.path).relative_to(root).as_posix() for s in scanned.samples] == ["a/ok.png", "b/ok.png"]
    # TensorFlow cannot hold the name as text: skipped, and listed in a form any report can store.
    reason = "the file name is not valid UTF-8 (rename the file to train on it)"
    assert scanned.skipped == [(f"{root}/a/caf\\xe9.png", reason)]
    Path(os.fsdecode(os.fsencode(root) + b"/caf\xe9")).mkdir()
    with pytest.raises(data.DatasetError, match=r"class folder name is not valid UTF-8: .*caf\\xe9 \(rename it\)"):
        data.scan_class_folders(root)
