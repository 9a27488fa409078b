"""`convnet-train adopt` as a command: the --inspect --json contract the app reads, dispatch by kind,
and the command line's own refusals.

The JSON shape is what desktop/core/adoption.py parses; these tests pin it (keys, types,
`missing` entries naming flags, settings only when known, exit 0 with settings missing,
an error object and exit 2 for an unreadable source).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from adopt_factory import IMAGENET_MEAN, IMAGENET_STD, foreign_classifier, preprocess_like_its_tool, sample_images

from training.adopt import dispatch
from training.adopt.source import AdoptError

TOP_KEYS = {"schema", "kind", "source", "input", "class_count", "settings", "missing", "notes", "preview_onnx"}


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory) -> Path:
    return foreign_classifier(tmp_path_factory.mktemp("inspect") / "timm-like.onnx", classes=4)


def test_inspect_json_reports_detected_settings_and_the_missing_flags(plain_model, run_cli):
    status, stdout, stderr = run_cli("adopt", plain_model, "--inspect", "--json")
    assert status == 0, stderr
    reply = json.loads(stdout)
    assert set(reply) == TOP_KEYS
    assert reply["schema"] == 1 and reply["kind"] == "onnx" and reply["source"] == str(plain_model)
    assert reply["input"] == {"name": "input", "dtype": "float32", "shape": [None, 3, 24, 24]}
    assert reply["class_count"] == 4
    settings = reply["settings"]
    assert settings["layout"] == {"value": "nchw", "origin": "the input tensor's shape 'input' float32 [?, 3, 24, 24]"}
    assert settings["input_size"]["value"] == [24, 24]
    assert settings["output"]["value"] == "logits" and "not probabilities" in settings["output"]["origin"]
    assert settings["labels"]["value"] == ["class 0", "class 1", "class 2", "class 3"]
    assert "mean" not in settings and "std" not in settings  # only what is known
    assert [(m["setting"], m["flag"]) for m in reply["missing"]] == [("mean", "--mean R G B"), ("std", "--std R G B")]
    assert all("give --mean and --std" in m["message"] for m in reply["missing"])
    assert reply["preview_onnx"] is None
    assert all(isinstance(note, str) for note in reply["notes"])


def test_inspect_json_with_flags_has_nothing_missing_and_names_the_flags(plain_model, run_cli):
    flags = ["--mean", *IMAGENET_MEAN, "--std", *IMAGENET_STD, "--resize", "shorter-side-crop", "--output", "logits"]
    status, stdout, _ = run_cli("adopt", plain_model, "--inspect", "--json", *flags)
    assert status == 0
    reply = json.loads(stdout)
    assert reply["missing"] == []
    assert reply["settings"]["mean"] == {"value": list(IMAGENET_MEAN), "origin": "--mean (given)"}
    assert reply["settings"]["resize"]["value"] == "shorter-side-crop"
    assert reply["settings"]["crop_fraction"]["value"] == 0.875


def test_preview_onnx_is_the_original_graph(plain_model, tmp_path, run_cli):
    preview = tmp_path / "preview" / "original.onnx"
    status, stdout, _ = run_cli("adopt", plain_model, "--inspect", "--json", "--preview-onnx", preview)
    assert status == 0 and json.loads(stdout)["preview_onnx"] == str(preview)
    x = preprocess_like_its_tool(sample_images(24, 3), "nchw", IMAGENET_MEAN, IMAGENET_STD, False, "float32")
    mine = ort.InferenceSession(str(preview), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    theirs = ort.InferenceSession(str(plain_model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.array_equal(mine, theirs)
    assert [p.name for p in preview.parent.iterdir()] == ["original.onnx"]


def test_inspect_text_says_what_is_still_needed(plain_model, run_cli):
    status, stdout, _ = run_cli("adopt", plain_model, "--inspect")
    assert status == 0
    assert "still needed before adopting:" in stdout and "give --mean and --std" in stdout
    assert stdout.count("cannot tell the pixel scaling") == 1


def test_inspect_json_of_a_missing_source_is_an_error_object(tmp_path, run_cli):
    status, stdout, stderr = run_cli("adopt", tmp_path / "nowhere.onnx", "--inspect", "--json")
    assert status == 2
    assert json.loads(stdout) == {"schema": 1, "error": f"{tmp_path / 'nowhere.onnx'} not found"}
    assert stderr.count("convnet-train: error:") == 1


@pytest.mark.parametrize(
    ("files", "given", "kind"),
    [
        (["m.keras"], "m.keras", "keras"),
        (["m.h5"], "m.h5", "keras"),
        (["export/saved_model.pb"], "export", "savedmodel"),
        (["export/saved_model.pb"], "export/saved_model.pb", "savedmodel"),
        (["m.hdf5"], "m.hdf5", "keras"),
        (["tm/keras_model.h5", "tm/labels.txt"], "tm", "teachable_machine"),
        (["tm/keras_model.h5", "tm/labels.txt"], "tm/keras_model.h5", "teachable_machine"),
        (["lobe/signature.json", "lobe/saved_model.pb"], "lobe", "lobe"),
        (["lobe/signature.json", "lobe/model.onnx"], "lobe/model.onnx", "lobe"),
        (["m.onnx"], "m.onnx", "onnx"),
    ],
)
def test_the_source_kind_comes_from_the_files(tmp_path, files, given, kind):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert dispatch.source_kind(tmp_path / given) == kind


def test_a_reader_module_not_there_yet_is_a_clear_refusal(tmp_path, monkeypatch):
    monkeypatch.setitem(dispatch.READERS, "keras", ("training.adopt.no_such_reader", "read", "Keras"))
    (tmp_path / "m.keras").write_bytes(b"x")
    with pytest.raises(AdoptError, match=r"Keras sources are not supported yet \(m.keras\)"):
        dispatch.read_source(tmp_path / "m.keras")


def test_out_is_required_and_never_the_source(plain_model, run_cli):
    status, _, stderr = run_cli("adopt", plain_model)
    assert status == 2 and "give --out MODEL.onnx" in stderr
    status, _, stderr = run_cli("adopt", plain_model, "--out", plain_model, "--mean", 0, 0, 0, "--std", 1, 1, 1)
    assert status == 2 and "the original is never modified" in stderr
    status, _, stderr = run_cli("adopt", plain_model, "--out", "x.txt")
    assert status == 2 and "--out must name an .onnx file" in stderr


def test_bad_flag_values_are_refused(plain_model, tmp_path, run_cli):
    out = tmp_path / "a.onnx"
    status, _, stderr = run_cli("adopt", plain_model, "--out", out, "--mean", 0, 0, 0, "--std", 1, 0, 1)
    assert status == 2 and "--std must be above 0" in stderr
    status, _, stderr = run_cli(
        "adopt", plain_model, "--out", out, "--mean", 0, 0, 0, "--std", 1, 1, 1, "--input-size", 32, 32
    )
    assert status == 2 and "is fixed at 24x24; --input-size 32 32 does not fit it" in stderr
    assert not out.exists()


def test_adopting_an_onnx_file_never_imports_tensorflow(plain_model, tmp_path):
    out = tmp_path / "a.onnx"
    code = (
        "import sys; from training import cli; "
        f"status = cli.main(['adopt', {str(plain_model)!r}, '--out', {str(out)!r}, "
        "'--mean', '0', '0', '0', '--std', '1', '1', '1']); "
        "assert status == 0; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.exists()
