"""desktop/core/adoption.py against a fake `convnet-train adopt` (tests/desktop/qt/fake_adopter.py)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import onnx
import onnx_factory
import pytest
from onnx import TensorProto

from convnet_common.resize_mode import SHORTER_SIDE_CROP, ResizeMode
from desktop.core import adoption
from desktop.core.adopt_preview import AdoptPreview, PreviewError
from desktop.core.adoption import AdoptChoices, AdoptionError, parse_inspection
from desktop.core.model import load_model

FAKE = Path(__file__).resolve().parents[1] / "qt" / "fake_adopter.py"
LAUNCHER = (sys.executable, str(FAKE))
LABELS = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def foreign_model(tmp_path_factory) -> Path:
    """The colour model as a PyTorch export would be: float NCHW input, no metadata."""
    path = tmp_path_factory.mktemp("foreign") / "foreign.onnx"
    return onnx_factory.save_model(path, input_dtype=TensorProto.FLOAT, layout="NCHW", metadata=None)


@pytest.fixture
def fake_log(tmp_path: Path, monkeypatch) -> Path:
    log = tmp_path / "argv.log"
    monkeypatch.setenv("FAKE_ADOPT_LOG", str(log))
    monkeypatch.delenv("FAKE_ADOPT", raising=False)
    return log


def logged(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_inspect_runs_the_child_and_reads_its_report(foreign_model: Path, tmp_path: Path, fake_log: Path) -> None:
    inspection = adoption.inspect_source(LAUNCHER, foreign_model, tmp_path)
    assert logged(fake_log) == [
        ["adopt", str(foreign_model), "--inspect", "--json", "--preview-onnx", str(tmp_path / "preview.onnx")]
    ]
    assert inspection.kind == "onnx" and inspection.input_shape == [None, 3, 16, 16] and inspection.class_count == 3
    assert inspection.preview_onnx == tmp_path / "preview.onnx" and inspection.preview_onnx.is_file()
    assert inspection.settings["layout"].origin == "the input tensor's shape"
    assert [m.setting for m in adoption.still_missing(inspection, set())] == ["mean", "std"]
    assert adoption.still_missing(inspection, {"mean", "std"}) == []
    choices = AdoptChoices.from_inspection(inspection)
    assert (choices.layout, choices.input_size, choices.output) == ("nchw", (16, 16), "probabilities")
    assert choices.labels == ("red", "green", "blue") and not choices.labels_edited
    assert (choices.mean, choices.std) == adoption.IMAGENET  # the default a missing scaling starts from


def test_unreadable_source_gives_the_childs_one_line(foreign_model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_ADOPT", "unreadable")
    with pytest.raises(AdoptionError, match=r"^foreign.onnx: not an ONNX, Keras or SavedModel file$"):
        adoption.inspect_source(LAUNCHER, foreign_model, tmp_path)


def test_missing_convnet_train_is_a_message(foreign_model: Path, tmp_path: Path) -> None:
    with pytest.raises(AdoptionError, match="could not be started"):
        adoption.inspect_source([str(tmp_path / "no-such-convnet-train")], foreign_model, tmp_path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no JSON report"),
        ("Traceback (most recent call last):", "not its JSON report"),
        ('{"schema": 2, "kind": "onnx"}', "schema 2"),
        ('{"schema": 1, "settings": {"layout": 3}, "missing": [{"flag": "--x"}]}', "malformed"),
        ('{"schema": 1, "error": "two inputs:\\n image, mask"}', "^two inputs: image, mask$"),
    ],
)
def test_bad_reports_are_one_line_errors(text: str, says: str) -> None:
    with pytest.raises(AdoptionError, match=says) as caught:
        parse_inspection(text)
    assert "\n" not in str(caught.value)


def test_flags_say_every_setting() -> None:
    choices = AdoptChoices(layout="nhwc", input_size=(32, 48), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    flags = choices.flags()
    assert flags[flags.index("--mean") + 1 : flags.index("--mean") + 4] == ["0.5", "0.5", "0.5"]
    assert flags[flags.index("--input-size") + 1 : flags.index("--input-size") + 3] == ["32", "48"]
    assert "--crop-fraction" not in flags and "--labels" not in flags
    cropping = AdoptChoices(resize="shorter_side_crop", crop_fraction=0.9).flags(Path("l.txt"))
    assert cropping[cropping.index("--resize") + 1] == "shorter-side-crop"
    assert cropping[cropping.index("--crop-fraction") + 1] == "0.9" and cropping[-2:] == ["--labels", "l.txt"]


def test_presets_and_problems() -> None:
    assert adoption.preset_name(*adoption.IMAGENET) == "ImageNet (timm/torchvision)"
    assert adoption.preset_name((0.5,) * 3, (0.5,) * 3) == "−1…1"
    assert adoption.preset_name((0.1, 0.2, 0.3), (1, 1, 1)) == adoption.CUSTOM_PRESET
    assert AdoptChoices().problems() == []
    assert AdoptChoices(std=(0.2, 0.0, 0.2)).problems() == ["std must not be 0 (the pixels are divided by it)"]
    assert AdoptChoices(crop_fraction=1.5).problems() == ["crop fraction must be above 0 and at most 1"]


def test_default_output_path(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "net.onnx"
    models = tmp_path / "models"
    assert adoption.default_output_path(source, models) == tmp_path / "net-adopted.onnx"
    monkeypatch.setattr(adoption.os, "access", lambda path, mode: False)  # a read-only folder
    assert adoption.default_output_path(source, models) == models / "net-adopted.onnx"


def test_save_writes_the_adopted_model(foreign_model: Path, tmp_path: Path, fake_log: Path) -> None:
    destination = tmp_path / "out" / "foreign-adopted.onnx"
    choices = AdoptChoices(
        input_size=(16, 16),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        resize="shorter_side_crop",
        crop_fraction=0.9,
        labels=("rot", "grün", "blau"),
        labels_edited=True,
    )
    assert adoption.save_adopted(LAUNCHER, foreign_model, destination, choices) == destination
    argv = logged(fake_log)[0]
    out = Path(argv[3])  # written in a temporary folder beside the destination, then renamed
    assert argv[:3] == ["adopt", str(foreign_model), "--out"] and out.name == destination.name
    assert out.parent.parent == destination.parent and out.parent != destination.parent
    assert Path(argv[argv.index("--labels") + 1]).parent == out.parent
    model = load_model(destination, provider="cpu")
    assert model.info.labels == ["rot", "grün", "blau"]
    assert model.info.resize == ResizeMode(SHORTER_SIDE_CROP, 0.9)
    assert sorted(p.name for p in destination.parent.iterdir()) == [destination.name]  # no temp folder left


def test_failed_run_shows_its_message_and_writes_nothing(foreign_model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_ADOPT", "fail")
    with pytest.raises(AdoptionError, match="^convnet-train adopt: error: the adopted file's probabilities differ"):
        adoption.save_adopted(LAUNCHER, foreign_model, tmp_path / "x.onnx", AdoptChoices())
    assert list(tmp_path.iterdir()) == []


def test_cancel_kills_the_child_and_leaves_nothing(foreign_model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_ADOPT", "slow")
    cancel = threading.Event()
    threading.Timer(1.5, cancel.set).start()
    started = time.monotonic()
    assert adoption.save_adopted(LAUNCHER, foreign_model, tmp_path / "x.onnx", AdoptChoices(), cancel) is None
    assert time.monotonic() - started < 15  # the child sleeps 60 s: it was killed, not waited for
    assert list(tmp_path.iterdir()) == []


def test_the_source_is_never_the_destination(foreign_model: Path) -> None:
    with pytest.raises(AdoptionError, match="must not replace"):
        adoption.save_adopted(LAUNCHER, foreign_model, foreign_model, AdoptChoices())
    assert foreign_model.stat().st_size > 0


# The live preview (desktop/core/adopt_preview.py) on the original float graph ------------

RED_IMAGE = onnx_factory.mostly((230, 20, 20), height=48, width=64)
ZERO_TO_255 = adoption.MEAN_STD_PRESETS["0…255"]


@pytest.fixture(scope="module")
def preview() -> AdoptPreview:
    return AdoptPreview()


def test_preview_changes_with_the_pixel_scaling(preview: AdoptPreview, foreign_model: Path) -> None:
    # The colour model's logits are 0.05 x the channel means: on raw 0-255 values a red
    # picture is red beyond doubt; on ImageNet-normalised values (about -2..2) it is nearly flat.
    raw = preview.predict(
        foreign_model,
        RED_IMAGE,
        AdoptChoices(input_size=(16, 16), mean=ZERO_TO_255[0], std=ZERO_TO_255[1], output="probabilities"),
        LABELS,
    )
    normalised = preview.predict(
        foreign_model, RED_IMAGE, AdoptChoices(input_size=(16, 16), output="probabilities"), LABELS
    )
    assert raw.top_k[0][0] == normalised.top_k[0][0] == "red"
    assert raw.top_k[0][1] > 0.99 and normalised.top_k[0][1] < 0.5
    assert raw.model_input.shape == (16, 16, 3) and preview.sessions_opened == 1  # one session for both


def test_preview_follows_channel_order_and_layout(preview: AdoptPreview, tmp_path: Path) -> None:
    nhwc = onnx_factory.save_model(tmp_path / "nhwc.onnx", input_dtype=TensorProto.FLOAT, metadata=None)
    choices = AdoptChoices(
        layout="nhwc", input_size=(16, 16), mean=ZERO_TO_255[0], std=ZERO_TO_255[1], output="probabilities"
    )
    assert preview.predict(nhwc, RED_IMAGE, choices, LABELS).top_k[0][0] == "red"
    swapped = replace(choices, channel_order="bgr")
    assert preview.predict(nhwc, RED_IMAGE, swapped, LABELS).top_k[0][0] == "blue"


def test_preview_session_is_reopened_only_when_the_file_changes(foreign_model: Path, tmp_path: Path) -> None:
    preview = AdoptPreview()
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(foreign_model.read_bytes())
    choices = AdoptChoices(input_size=(16, 16))
    preview.predict(copy, RED_IMAGE, choices)
    preview.predict(copy, RED_IMAGE, replace(choices, mean=(0.1, 0.1, 0.1)))
    assert preview.sessions_opened == 1
    os.utime(copy, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    result = preview.predict(copy, RED_IMAGE, choices)
    assert preview.sessions_opened == 2 and [name for name, _ in result.top_k][:1] == ["class 0"]  # no labels given


def test_preview_refuses_bad_files_and_settings(preview: AdoptPreview, foreign_model: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(PreviewError) as caught:
        preview.predict(junk, RED_IMAGE, AdoptChoices(input_size=(16, 16)))
    assert "\n" not in str(caught.value) and str(caught.value)
    with pytest.raises(PreviewError, match="std must not be 0"):
        preview.predict(foreign_model, RED_IMAGE, AdoptChoices(std=(0.0, 1.0, 1.0)))
    with pytest.raises(PreviewError, match="cannot run with these settings"):
        preview.predict(foreign_model, RED_IMAGE, AdoptChoices(input_size=(16, 16), layout="nhwc"))


def test_a_hostile_preview_graph_is_refused_by_the_guarded_first_run(tmp_path: Path) -> None:
    """A float graph that asks for 19 GB when run (Resize x2500) never runs in the app's process."""
    model = onnx_factory.exploding_model("resize")
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT
    del model.metadata_props[:]
    path = tmp_path / "bomb.onnx"
    onnx.save(model, str(path))
    preview = AdoptPreview()
    with pytest.raises(PreviewError, match="bomb.onnx was refused: its test run needed more than") as caught:
        preview.predict(path, RED_IMAGE, AdoptChoices(layout="nhwc", input_size=(16, 16)))
    assert "\n" not in str(caught.value) and preview.sessions_opened == 0
