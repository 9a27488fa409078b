"""Bad datasets and unavailable weights stop early with a message that says what to fix."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training import cli


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((12, 12, 3), value, np.uint8))


def _train(data_dir, tmp_path, *extra):
    return cli.main(
        [
            "train",
            str(data_dir),
            "--backbone",
            "lenet5",
            "--weights",
            "none",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
            *extra,
        ]
    )


def test_empty_dataset_folder(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert _train(tmp_path / "data", tmp_path) == 2
    assert "no class folders" in capsys.readouterr().err
    assert not (tmp_path / "run").exists(), "nothing should be written before training starts"


def test_single_class(tmp_path, capsys):
    _png(tmp_path / "data" / "cat" / "a.png")
    _png(tmp_path / "data" / "cat" / "b.png")
    assert _train(tmp_path / "data", tmp_path) == 2
    assert "single class" in capsys.readouterr().err


def test_empty_class_folder_is_named(tmp_path, capsys):
    _png(tmp_path / "data" / "cat" / "a.png")
    _png(tmp_path / "data" / "cat" / "b.png")
    (tmp_path / "data" / "dog").mkdir()
    (tmp_path / "data" / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    assert _train(tmp_path / "data", tmp_path) == 2
    assert "dog" in capsys.readouterr().err


def test_unreadable_files_are_skipped_and_recorded(tmp_path):
    import json

    for label, value in (("dark", 20), ("light", 230)):
        for i in range(6):
            _png(tmp_path / "data" / label / "nested" / f"{i}.png", value + i)
    (tmp_path / "data" / "dark" / "empty.jpg").write_bytes(b"")
    (tmp_path / "data" / "light" / "notes.png").write_text("hello")
    assert _train(tmp_path / "data", tmp_path) == 0
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    skipped = {path.rsplit("/", 1)[-1]: reason for path, reason in split["skipped"]}
    assert set(skipped) == {"empty.jpg", "notes.png"}
    assert "empty" in skipped["empty.jpg"]
    assert len(split["train"]) + len(split["val"]) == 12
    # Augmentation (the default, "light") ran in the input pipeline, not in the model.
    import keras

    import training.layers  # noqa: F401 - registers the in-graph layers for loading

    model = keras.models.load_model(tmp_path / "run" / "best.keras", safe_mode=True)
    names = [type(layer).__name__ for layer in model.layers]
    assert not [name for name in names if name.startswith("Random")], names


def test_val_dir_is_used_for_validation(tmp_path):
    import json

    for root, count in (("data", 6), ("val", 2)):
        for label, value in (("dark", 20), ("light", 230)):
            for i in range(count):
                _png(tmp_path / root / label / f"{i}.png", value)
    assert _train(tmp_path / "data", tmp_path, "--val-dir", str(tmp_path / "val")) == 0
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) == 12 and len(split["val"]) == 4
    assert all("/val/" in path for path, _ in split["val"])


def test_unknown_backbone(tmp_path, capsys):
    _png(tmp_path / "data" / "a" / "1.png")
    status = cli.main(["train", str(tmp_path / "data"), "--backbone", "lenet7", "--out", str(tmp_path / "r")])
    assert status == 2
    assert "lenet5" in capsys.readouterr().err


def test_imagenet_download_failure_names_file_and_cache_folder(tmp_path, monkeypatch, capsys):
    from training import registry
    from training.weights import WeightsUnavailableError, build_base_with_weights

    keras_home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    # A proxy nobody listens on makes the download fail at once, online or not.
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(WeightsUnavailableError) as caught:
        build_base_with_weights(registry.get_backbone("mobilenet_v2"), (96, 96, 3), "imagenet")
    message = str(caught.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in message
    assert str(keras_home / "models") in message
    assert "--weights none" in message


@pytest.mark.slow
def test_local_weights_file_is_loaded(tmp_path):
    import keras

    from training import registry
    from training.model_builder import build_classifier

    backbone = registry.get_backbone("mobilenet_v2")
    keras.utils.set_random_seed(11)
    source = backbone.build_base((64, 64, 3), None)
    weights_file = tmp_path / "base.weights.h5"
    source.save_weights(weights_file)
    keras.utils.set_random_seed(12)
    classifier = build_classifier(backbone, 3, 64, str(weights_file))
    loaded = classifier.get_layer("base").get_weights()
    for expected, actual in zip(source.get_weights(), loaded):
        np.testing.assert_array_equal(expected, actual)


def test_weights_path_must_exist(tmp_path, capsys):
    _png(tmp_path / "data" / "a" / "1.png")
    _png(tmp_path / "data" / "b" / "1.png")
    status = _train(tmp_path / "data", tmp_path, "--weights", str(tmp_path / "missing.weights.h5"))
    assert status == 2
    assert "not found" in capsys.readouterr().err


def test_odd_image_modes_train_and_broken_files_reach_the_report(tmp_path):
    import json

    from PIL import Image

    root = tmp_path / "data"
    for label, value in (("dark", 30), ("light", 220)):
        folder = root / label / "deeper" / "still"
        folder.mkdir(parents=True)
        grey = np.full((16, 16), value, np.uint8)
        cv2.imwrite(str(folder / "grey.png"), grey)
        cv2.imwrite(str(folder / "deep16.png"), (grey.astype(np.uint16) * 257))
        rgba = np.dstack([np.full((16, 16, 3), value, np.uint8), np.full((16, 16), 128, np.uint8)])
        cv2.imwrite(str(folder / "alpha.png"), rgba)
        Image.new("CMYK", (16, 16), (0, 0, 0, 255 - value)).save(folder / "cmyk.jpg")
        Image.fromarray(grey).convert("P").save(folder / "palette.png")
        for i in range(3):
            _png(root / label / f"plain{i}.png", value)
    good = (root / "dark" / "plain0.png").read_bytes()
    (root / "dark" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "light" / "zero.jpg").write_bytes(b"")
    assert _train(root, tmp_path, "--augment", "none") == 0
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) == 16  # 8 per class, odd modes included
    skipped = sorted(path.rsplit("/", 1)[-1] for path, _ in split["skipped"])
    assert skipped == ["truncated.png", "zero.jpg"]
    metrics = json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())
    assert sorted(entry["path"].rsplit("/", 1)[-1] for entry in metrics["skipped"]) == skipped
    assert all(entry["reason"] for entry in metrics["skipped"])


# --- default weights follow the backbone ------------------------------------------------------


def _config_from_command_line(*argv):
    argv = ["train", "data", "--out", "run", *argv]
    return cli._train_config(cli.build_parser().parse_args(argv), argv)


@pytest.mark.parametrize(
    "name", ["mobilenet_v2", "vgg16", "lenet5", "mnist_convnet", "alexnet", "googlenet", "allconv"]
)
def test_weights_default_to_what_the_backbone_has(name):
    from training import registry

    expected = "imagenet" if registry.get_backbone(name).supports_imagenet else "none"
    assert _config_from_command_line("--backbone", name).weights == expected
    assert _config_from_command_line("--backbone", name, "--weights", "none").weights == "none"


def test_default_weights_when_the_backbone_comes_from_a_config_file(tmp_path):
    from training.config import TrainConfig

    config = tmp_path / "config.yaml"
    config.write_text("data_dir: data\nout: run\nbackbone: googlenet\n")
    assert TrainConfig.load(config).weights == "none"
    assert _config_from_command_line("--config", str(config)).weights == "none"
    saved = tmp_path / "saved.yaml"
    TrainConfig.load(config).save(saved)
    assert "weights: none" in saved.read_text()  # the run's config.yaml says what was used
    # Another network than the file's: its own default, not the weights meant for the file's network.
    assert _config_from_command_line("--config", str(config), "--backbone", "mobilenet_v2").weights == "imagenet"
    assert (
        _config_from_command_line("--config", str(config), "--backbone", "mobilenet_v2", "--weights", "none").weights
        == "none"
    )


def test_from_scratch_network_trains_without_weights_flag(tmp_path):
    for label, value in (("dark", 20), ("light", 230)):
        for i in range(4):
            _png(tmp_path / "data" / label / f"{i}.png", value + i)
    status = cli.main(
        [
            "train",
            str(tmp_path / "data"),
            "--backbone",
            "allconv",
            "--image-size",
            "16",
            "--epochs",
            "1",
            "--augment",
            "none",
            "--no-tensorboard",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert status == 0
    assert "weights: none" in (tmp_path / "run" / "config.yaml").read_text()


def test_explicit_imagenet_on_a_from_scratch_network_is_refused(tmp_path, capsys):
    _png(tmp_path / "data" / "a" / "1.png")
    _png(tmp_path / "data" / "b" / "1.png")
    status = cli.main(
        [
            "train",
            str(tmp_path / "data"),
            "--backbone",
            "lenet5",
            "--weights",
            "imagenet",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert status == 2
    error = capsys.readouterr().err
    assert "lenet5" in error and "no ImageNet weights" in error and "--weights none" in error
    assert not (tmp_path / "run").exists()
