"""Sources the Keras/SavedModel/Teachable Machine/Lobe readers cannot adopt stop with one
line that says what is wrong, never a traceback."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from foreign_keras_models import SIZE, make_teachable_machine

from training.adopt.source import AdoptError

pytestmark = pytest.mark.slow


def refusal(read, path: Path) -> str:
    with pytest.raises(AdoptError) as caught:
        read(path)
    message = str(caught.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


def read_keras(path):
    from training.adopt.keras_source import read_keras_source

    return read_keras_source(path)


def read_lobe(path):
    from training.adopt.lobe import read_lobe as read

    return read(path)


def tiny_conv_model():
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.Conv2D(4, 3, name="conv"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(2),
        ]
    )


def rename_conv_class(config, new_name: str) -> int:
    """Make the Conv2D entry a class Keras has never heard of (as a custom layer looks)."""
    count = 0
    if isinstance(config, dict):
        if config.get("class_name") == "Conv2D":
            config["class_name"], config["module"] = new_name, "fancy_layers"
            count += 1
        count += sum(rename_conv_class(value, new_name) for value in config.values())
    elif isinstance(config, list):
        count += sum(rename_conv_class(value, new_name) for value in config)
    return count


def test_two_inputs_are_refused(tmp_path):
    import keras
    from keras import layers

    photo, mask = keras.Input((SIZE, SIZE, 3), name="photo"), keras.Input((SIZE, SIZE, 3), name="mask")
    pooled = layers.GlobalAveragePooling2D()(layers.Add()([photo, mask]))
    keras.Model([photo, mask], layers.Dense(2)(pooled)).save(tmp_path / "two.keras")
    message = refusal(read_keras, tmp_path / "two.keras")
    assert "2 inputs" in message and "photo" in message and "mask" in message


def test_a_non_image_input_is_refused(tmp_path):
    import keras
    from keras import layers

    keras.Sequential([keras.Input((10,)), layers.Dense(3)]).save(tmp_path / "table.keras")
    message = refusal(read_keras, tmp_path / "table.keras")
    assert "[None, 10]" in message and "[N, height, width, 3]" in message


def test_a_custom_layer_is_named_in_keras_format(tmp_path):
    path = tmp_path / "custom.keras"
    tiny_conv_model().save(path)
    patched = tmp_path / "patched.keras"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(patched, "w") as out:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                assert rename_conv_class(config, "FancyConv") == 1
                data = json.dumps(config).encode()
            out.writestr(item, data)
    message = refusal(read_keras, patched)
    assert "FancyConv" in message and "not part of Keras" in message


def test_a_custom_layer_is_named_in_h5(tmp_path):
    import h5py

    path = tmp_path / "custom.h5"
    tiny_conv_model().save(path)
    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        assert rename_conv_class(config, "FancyConv") == 1
        file.attrs["model_config"] = json.dumps(config)
    message = refusal(read_keras, path)
    assert "FancyConv" in message and "not part of Keras" in message


def test_missing_and_wrongly_named_files_are_refused(tmp_path):
    assert "no such file" in refusal(read_keras, tmp_path / "absent.keras")
    (tmp_path / "model.pt").write_bytes(b"\x80\x02")
    assert ".keras" in refusal(read_keras, tmp_path / "model.pt")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5 at all")
    assert "Keras cannot load it" in refusal(read_keras, tmp_path / "broken.h5")


def test_labels_txt_whose_length_does_not_match_the_outputs(tmp_path):
    from training.adopt.teachable_machine import read_teachable_machine

    folder = make_teachable_machine(tmp_path / "tm")
    (folder / "labels.txt").write_text("0 cat\n1 dog\n2 bird\n", encoding="utf-8")
    message = refusal(read_teachable_machine, folder)
    assert "3 class names" in message and "2 outputs" in message


def test_a_savedmodel_without_a_serving_signature(tmp_path):
    import tensorflow as tf

    from training.adopt.savedmodel_source import read_savedmodel_source

    class Bare(tf.Module):
        @tf.function
        def double(self, x):
            return 2 * x

    module = Bare()
    module.double(tf.zeros((1, SIZE, SIZE, 3)))
    tf.saved_model.save(module, str(tmp_path / "bare"))
    message = refusal(read_savedmodel_source, tmp_path / "bare")
    assert "no 'serving_default' signature" in message
    assert "not a SavedModel folder" in refusal(read_savedmodel_source, tmp_path)


def test_lobe_signature_that_is_not_json(tmp_path):
    (tmp_path / "signature.json").write_text('{"format": "tf", "classes": ', encoding="utf-8")
    assert "not valid JSON" in refusal(read_lobe, tmp_path)


def test_lobe_signature_without_classes_or_with_an_unknown_format(tmp_path):
    signature = {"format": "tf", "inputs": {"Image": {"shape": [1, SIZE, SIZE, 3]}}}
    (tmp_path / "signature.json").write_text(json.dumps(signature), encoding="utf-8")
    assert "classes.Label" in refusal(read_lobe, tmp_path)
    signature["classes"] = {"Label": ["a", "b"]}
    signature["format"] = "tf_lite"
    (tmp_path / "signature.json").write_text(json.dumps(signature), encoding="utf-8")
    assert "'tf_lite' is not supported" in refusal(read_lobe, tmp_path)


def test_lobe_labels_that_do_not_match_the_outputs(lobe_savedmodel, tmp_path):
    folder = tmp_path / "lobe"
    shutil.copytree(lobe_savedmodel, folder)
    signature = json.loads((folder / "signature.json").read_text(encoding="utf-8"))
    signature["classes"]["Label"] = ["only", "two"]
    (folder / "signature.json").write_text(json.dumps(signature), encoding="utf-8")
    message = refusal(read_lobe, folder)
    assert "2 classes" in message and "3 outputs" in message


def test_a_lambda_layer_is_not_run(tmp_path):
    """safe_mode: Python code stored in the file is refused, not executed."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), layers.Lambda(lambda x: x * 2), layers.GlobalAveragePooling2D(), layers.Dense(2)]
    )
    model.save(tmp_path / "lambda.keras")
    assert "Lambda layer" in refusal(read_keras, tmp_path / "lambda.keras")
