"""The image loader over the bad-image corpus: every failure is one clear line, every
good file decodes upright, composited and 8-bit, and huge headers never reach OpenCV."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import bad_images
import cv2
import numpy as np
import pytest
from bad_images import UNREADABLE, Case, build_corpus, deny_reading, file_cases, over_white
from PIL import Image, ImageOps

from convnet_common import imaging
from convnet_common.image_headers import inspect_header
from convnet_common.imaging import (
    MAX_IMAGE_PIXELS,
    ImageReadError,
    decode_for_model,
    decode_image_rgb,
    load_image_for_model,
    load_image_rgb,
    read_image_bytes,
    resize_for_model,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Case]]:
    folder = tmp_path_factory.mktemp("bad") / "corpus"
    return folder, build_corpus(folder)


def _colour_of(image: np.ndarray) -> str:
    return ("red", "green", "blue")[int(np.argmax(image.reshape(-1, 3).mean(axis=0)))]


def _check_failure(path: Path, case: Case, error: ImageReadError) -> list[str]:
    text = str(error)
    problems = []
    if "\n" in text or not text.startswith(f"{path}: "):
        problems.append(f"{case.name}: message is not one line naming the file: {text!r}")
    missing = [word for word in case.words if word not in text]
    if missing:
        problems.append(f"{case.name}: message {text!r} lacks {missing}")
    return problems


def _check_picture(case: Case, image: np.ndarray, what: str) -> list[str]:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return [f"{case.name}: {what} is {image.dtype} {image.shape}, not HxWx3 uint8"]
    problems = []
    if case.colour is not None and _colour_of(image) != case.colour:
        problems.append(f"{case.name}: {what} reads as {_colour_of(image)}, not {case.colour}")
    return problems


def test_every_corpus_file_decodes_or_fails_as_its_case_says(corpus, monkeypatch) -> None:
    folder, cases = corpus
    deny_reading(monkeypatch, [folder / UNREADABLE])
    problems: list[str] = []
    for name, case in file_cases(cases).items():
        path = folder / name
        for what, load in (("full decode", load_image_rgb), ("model input", lambda p: load_image_for_model(p, 16, 16))):
            try:
                image = load(path)
            except ImageReadError as error:
                if case.must_fail:
                    problems += _check_failure(path, case, error)
                else:
                    problems.append(f"{name}: {what} failed: {error}")
                continue
            if case.must_fail:
                problems.append(f"{name}: {what} decoded, but must fail with {case.words}")
                continue
            problems += _check_picture(case, image, what)
            if case.upright is None:
                continue
            expected = case.upright if what == "full decode" else resize_for_model(case.upright, 16, 16)
            if image.shape != expected.shape:
                problems.append(f"{name}: {what} is {image.shape[:2]}, upright is {expected.shape[:2]}")
                continue
            # The model input of a large-enough JPEG comes from a reduced decode: allow its rounding.
            tolerance = case.tolerance + (3.0 if what == "model input" else 0.0)
            difference = float(np.abs(image.astype(int) - expected.astype(int)).mean())
            if difference > tolerance:
                problems.append(f"{name}: {what} differs from the upright picture by {difference:.1f} on average")
    assert not problems, "\n".join(problems)


def test_bad_bytes_fail_the_same_way_in_memory(corpus) -> None:
    """decode_image_rgb and decode_for_model (the fuzzers' entry points) agree with the file loaders."""
    folder, cases = corpus
    for name, case in file_cases(cases).items():
        path = folder / name
        if not case.must_fail or name == UNREADABLE or not path.is_file() or path.is_symlink():
            continue  # only the bytes themselves are bad here; links, pipes and permissions are the file's
        data = path.read_bytes()
        for decode in (lambda: decode_image_rgb(data, str(path)), lambda: decode_for_model(data, 224, 224, str(path))):
            with pytest.raises(ImageReadError) as caught:
                decode()
            assert _check_failure(path, case, caught.value) == []


def test_huge_or_impossible_headers_are_refused_before_opencv_sees_them(corpus, monkeypatch) -> None:
    folder, cases = corpus

    def no_decoding(*args, **kwargs):
        raise AssertionError("OpenCV was asked to decode a file whose header is over the limit")

    monkeypatch.setattr(imaging.cv2, "imdecode", no_decoding)
    huge = [name for name in cases if name.startswith("huge")]
    assert len(huge) == 6  # PNG, JPEG, BMP, GIF, TIFF, WebP
    for name in huge:
        with pytest.raises(ImageReadError, match=f"above the limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels"):
            load_image_for_model(folder / name, 224, 224)
    # Under the limit, but a length field or a size the data cannot back: refused from the chunk headers.
    for name in ("size lie.png", "chunk length bomb.png"):
        with pytest.raises(ImageReadError, match="corrupt or truncated PNG data"):
            load_image_rgb(folder / name)


def test_opencvs_own_limit_error_becomes_an_image_read_error(corpus, monkeypatch) -> None:
    """Where the header cannot be parsed, OpenCV's cv2.error (which used to escape) is converted."""
    folder, _ = corpus
    real = inspect_header
    monkeypatch.setattr(imaging, "inspect_header", lambda data: real(data).__class__("BMP", None, False))
    with pytest.raises(ImageReadError, match="huge.bmp: the image is above the limit of 120 megapixels"):
        load_image_rgb(folder / "huge.bmp")
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise cv2.error("OpenCV(5.0.0) decoder exploded")

    monkeypatch.setattr(imaging.cv2, "imdecode", broken)
    with pytest.raises(ImageReadError, match="corrupt or truncated PNG data"):
        decode_image_rgb(bad_images.encode(bad_images.mostly(bad_images.RED), "PNG"), "x.png")


def _rgba_with_holes(size: int = 32) -> np.ndarray:
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = (10, 40, 250)  # hidden under alpha 0
    rgba[..., 3] = np.linspace(0, 255, size, dtype=np.uint8)[None, :]  # every alpha level
    rgba[: size // 4, : size // 2] = (250, 10, 10, 255)  # an opaque corner, for orientation
    return rgba


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_partial_transparency_is_composited_over_white(fmt: str) -> None:
    rgba = _rgba_with_holes()
    options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    decoded = decode_image_rgb(bad_images.encode(rgba, fmt, **options))
    # TIFF goes through libtiff's premultiplied RGBA, which rounds once more.
    assert np.abs(decoded.astype(int) - over_white(rgba).astype(int)).max() <= (2 if fmt == "TIFF" else 1)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_transparent_images_still_honour_exif_orientation(fmt: str, orientation: int) -> None:
    source = Image.fromarray(_rgba_with_holes()[:, :24])  # not square: a turn changes the shape
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    data = bad_images.encode(source, fmt, exif=exif.tobytes(), **options)
    assert inspect_header(data).alpha
    upright = over_white(np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))))
    decoded = decode_image_rgb(data)
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - upright.astype(int)).max() <= 1
    # An opaque copy takes OpenCV's own orientation path: the two paths must agree.
    opaque = np.asarray(source).copy()
    opaque[..., 3] = 255
    reference = cv2.imdecode(
        np.frombuffer(bad_images.encode(opaque[..., :3], fmt, exif=exif.tobytes(), **options), np.uint8),
        cv2.IMREAD_COLOR,
    )
    assert decoded.shape == reference.shape


def test_ordinary_files_skip_the_transparency_path() -> None:
    picture = bad_images.mostly(bad_images.GREEN)
    for fmt in ("PNG", "JPEG", "BMP", "WEBP"):
        assert not inspect_header(bad_images.encode(picture, fmt)).alpha, fmt
    opaque_rgba = np.dstack([picture, np.full(picture.shape[:2], 255, np.uint8)])
    data = bad_images.encode(opaque_rgba, "PNG")
    assert inspect_header(data).alpha
    np.testing.assert_array_equal(decode_image_rgb(data), picture)


def test_read_errors_name_the_file_and_the_reason(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "folder.jpg").mkdir()
    cases = {
        tmp_path / "missing.jpg": "file not found",
        tmp_path / "folder.jpg": "is a folder",
    }
    for path, reason in cases.items():
        with pytest.raises(ImageReadError) as caught:
            read_image_bytes(path)
        assert str(caught.value) == f"{path}: {reason}" or str(caught.value).startswith(f"{path}: {reason}")
    with pytest.raises(ImageReadError, match="not a valid file name"):
        read_image_bytes(str(tmp_path / "nul\x00.png"))
    denied = tmp_path / "secret.png"
    denied.write_bytes(b"\x89PNG")
    deny_reading(monkeypatch, [denied])
    with pytest.raises(ImageReadError, match=r"secret\.png: permission denied$"):
        read_image_bytes(denied)


def test_oversized_files_are_not_read(tmp_path: Path, monkeypatch) -> None:
    big = tmp_path / "big.jpg"
    with open(big, "wb") as handle:
        handle.truncate(4096)  # sparse: costs nothing
    monkeypatch.setattr(imaging, "MAX_IMAGE_FILE_BYTES", 1024)
    with pytest.raises(ImageReadError, match="above the limit"):
        read_image_bytes(big)


_READ_AS_NOBODY = """
import sys
from convnet_common.imaging import ImageReadError, load_image_rgb
try:
    load_image_rgb(sys.argv[1])
except ImageReadError as error:
    print(error)
"""


def test_really_unreadable_file_says_permission_denied(tmp_path: Path) -> None:
    """The real thing, not the simulation: a mode-000 file read by a user who is not root."""
    if not hasattr(os, "getuid"):
        pytest.skip("POSIX permissions only")
    # pytest's own temporary folders are private to root: use one anybody may enter.
    folder = Path(tempfile.mkdtemp(prefix="convnet-perm-"))
    folder.chmod(0o755)
    path = folder / "private.jpg"
    path.write_bytes(bad_images.encode(bad_images.mostly(bad_images.RED), "JPEG"))
    path.chmod(0)
    become_nobody = (lambda: os.setuid(65534)) if os.getuid() == 0 else None
    try:
        result = subprocess.run(
            [sys.executable, "-c", _READ_AS_NOBODY, str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            preexec_fn=become_nobody,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    except PermissionError:
        pytest.skip("the interpreter is not reachable by an unprivileged user here")
    if result.returncode != 0 and "Permission denied" in result.stderr and "private.jpg" not in result.stderr:
        pytest.skip("the checkout or interpreter is not readable by an unprivileged user here")
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{path}: permission denied"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
