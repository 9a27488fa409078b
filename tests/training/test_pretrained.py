"""`convnet-train pretrained`: the stock ImageNet classifier as a model file."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from convnet_common import model_format as fmt
from training import cli, registry
from training.pretrained import export_pretrained, stock_classifier

pytestmark = pytest.mark.slow


def test_stock_classifier_keeps_the_published_top_with_logits_split_off():
    classifier = stock_classifier(registry.get_backbone("vgg16"), weights=None)
    names = [layer.name for layer in classifier.layers]
    assert names[-4:] == ["fc1", "fc2", "logits", "probabilities"]
    assert classifier.get_layer("base").output.shape[1:] == (7, 7, 512)  # after block5_pool
    assert classifier.count_params() == 138_357_544  # exactly VGG16 with its top


def test_export_pretrained_writes_a_1000_class_model(tmp_path):
    names = [f"imagenet class {i}" for i in range(1000)]
    out = tmp_path / "mobilenet_v2-imagenet.onnx"
    report = export_pretrained("mobilenet_v2", out, weights=None, class_names=names)
    assert report.max_probability_difference <= 1e-4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta[fmt.KEY_LABELS]) == names
    assert json.loads(meta[fmt.KEY_INPUT_SIZE]) == [224, 224]
    assert meta[fmt.KEY_CAM_LAYER] == "out_relu"
    assert "ImageNet" in json.loads(meta[fmt.KEY_TRAINING])["dataset"]
    probabilities, cam = session.run(None, {"image": np.zeros((1, 224, 224, 3), np.uint8)})
    assert probabilities.shape == (1, 1000) and cam.shape == (1, 7, 7, 1000)


def test_pretrained_offline_says_what_to_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    out = tmp_path / "m.onnx"
    assert cli.main(["pretrained", "mobilenet_v2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the internet" in err
    assert "imagenet_class_index.json" in err and str(tmp_path / "keras-home" / "models") in err
    assert not out.exists()


def test_from_scratch_networks_have_no_imagenet_classifier(tmp_path, capsys):
    assert cli.main(["pretrained", "lenet5", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "no ImageNet classifier" in capsys.readouterr().err
