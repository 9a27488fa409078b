"""What a `train` leaves behind: nothing when it fails before its first epoch is saved, a
dataset name that says what the data is, and a plain verdict when it never beat chance."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from training import cli, data
from training.config import TrainConfig
from training.trainer import train


def _write_classes(root, classes=("a", "b", "c"), per_class=8, same_images=False):
    """Class folders of 16x16 pictures: distinct per class, or one noise picture everywhere."""
    rng = np.random.default_rng(0)
    shared = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = shared if same_images else np.full((16, 16, 3), 40 + 80 * index, np.uint8)
            cv2.imwrite(str(folder / f"{name}{i}.png"), image)
    return root


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No ImageNet download: an empty Keras cache and a proxy nobody listens on."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


def _imagenet_train(data_dir, out):
    return cli.main(
        [
            "train",
            str(data_dir),
            "--backbone",
            "mobilenet_v2",
            "--weights",
            "imagenet",
            "--image-size",
            "96",
            "--epochs",
            "1",
            "--no-tensorboard",
            "--out",
            str(out),
        ]
    )


def test_offline_imagenet_weights_leave_no_run_folder(tmp_path, offline, capsys):
    data_dir = _write_classes(tmp_path / "data")
    run_dir = tmp_path / "runs" / "pets"
    assert _imagenet_train(data_dir, run_dir) == 2
    err = capsys.readouterr().err
    assert "could not download" in err and "no_top.h5" in err
    assert not run_dir.exists(), f"a half-made run was left: {sorted(p.name for p in run_dir.iterdir())}"


def test_a_folder_that_existed_keeps_what_it_held(tmp_path, offline):
    data_dir = _write_classes(tmp_path / "data")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    assert _imagenet_train(data_dir, run_dir) == 2
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]
    assert (run_dir / "notes.txt").read_text() == "mine"


def _lenet(data_dir, out, **overrides) -> TrainConfig:
    values = dict(
        data_dir=str(data_dir),
        out=str(out),
        backbone="lenet5",
        weights="none",
        epochs=2,
        batch_size=8,
        augment="none",
        tensorboard=False,
        seed=3,
        early_stopping_patience=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_a_decoder_crash_in_the_first_epoch_leaves_no_run_folder(tmp_path, monkeypatch):
    """The images scan fine, then decoding for training fails (a dataset error that only
    shows once training reads the files): nothing was saved, so nothing is kept."""
    data_dir = _write_classes(tmp_path / "data")

    def broken_decoder(path, *size):
        raise RuntimeError(f"decoder crashed on {path}")

    from training import decoded_cache  # where training decodes (once, before the first epoch)

    monkeypatch.setattr(data, "load_image_for_model", broken_decoder)
    monkeypatch.setattr(decoded_cache, "load_image_for_model", broken_decoder)
    run_dir = tmp_path / "run"
    with pytest.raises(Exception, match="decoder crashed"):
        train(_lenet(data_dir, run_dir))
    assert not run_dir.exists()


@pytest.mark.slow
def test_ctrl_c_before_the_first_saved_epoch_removes_the_run_but_not_after(tmp_path):
    import keras

    class CtrlC(keras.callbacks.Callback):
        def __init__(self, where):
            super().__init__()
            self.where = where

        def on_train_batch_end(self, batch, logs=None):
            if self.where == "first batch":
                raise KeyboardInterrupt

        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # after the resume point of epoch 1 was written

    data_dir = _write_classes(tmp_path / "data")
    for where, kept in (("first batch", False), ("first epoch end", True)):
        run_dir = tmp_path / where.replace(" ", "-")
        with pytest.raises(KeyboardInterrupt):
            train(_lenet(data_dir, run_dir), callbacks=[CtrlC(where)])
        assert run_dir.exists() == kept, where
    assert (tmp_path / "first-epoch-end" / "checkpoints" / "state.json").is_file()


@pytest.mark.parametrize(
    "path, expected",
    [
        ("flowers/train", "flowers"),
        ("Flowers/TRAIN", "Flowers"),
        ("pets/images", "pets"),
        ("birds/Training-Set", "birds"),
        ("cats_vs_dogs", "cats_vs_dogs"),
        ("flowers/roses_only", "roses_only"),
        ("data/train", "train"),  # nothing telling above it: keep the folder's own name
    ],
)
def test_dataset_name_skips_generic_folder_names(tmp_path, path, expected):
    folder = tmp_path / "root" / path
    folder.mkdir(parents=True)
    assert data.default_dataset_name(folder) == expected


@pytest.mark.slow
def test_a_run_that_never_beats_chance_says_so(tmp_path, capsys):
    """One picture in every class: nothing to learn, so the verdict must be 'no better than
    chance' whatever the network does -- in the CLI's summary, result.json and the report."""
    data_dir = _write_classes(tmp_path / "flowers" / "train", per_class=12, same_images=True)
    run_dir = tmp_path / "run"
    assert (
        cli.main(
            [
                "train",
                str(data_dir),
                "--backbone",
                "lenet5",
                "--weights",
                "none",
                "--epochs",
                "2",
                "--augment",
                "none",
                "--no-tensorboard",
                "--val-fraction",
                "0.5",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "WARNING: The model did no better than chance" in err
    assert "WARNING: likely causes:" in err and "too few epochs (2)" in err
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["beats_chance"] is False and summary["chance"]["verdict"] == "no better than chance"
    assert summary["dataset"] == "flowers"
    metrics = json.loads((run_dir / "report" / "metrics.json").read_text())
    assert next(iter(metrics)) == "verdict" and metrics["verdict"]["beats_chance"] is False
    report_text = err[err.index("The model did no better than chance") :]
    assert report_text.index("The model did no better") < report_text.index("evaluated ")
