"""Every registered network builds, runs, exports and (for the from-scratch ones) learns.

Random weights throughout (weights=None): this machine cannot download ImageNet weights.
The lists of networks come from the registry, which discovers them in training/networks:
a network added there is tested here without editing this file.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from training import registry
from training.model_builder import (
    build_classifier,
    build_export_model,
    build_feature_model,
    build_training_model,
    head_of,
)
from training.networks import NETWORKS

# Small sizes keep the keras.applications builds to a few seconds each on two cores: the
# default size where that is small already, else 64 or the smallest the network accepts.
SMALL_SIZE = {
    name: min(backbone.default_image_size, max(backbone.min_image_size, 64))
    for name, backbone in registry.BACKBONES.items()
}
FROM_SCRATCH = [name for name, backbone in registry.BACKBONES.items() if not backbone.supports_imagenet]


def random_pixels(count: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("name", list(registry.BACKBONES))
def test_every_backbone_builds_runs_and_exports(name):
    import keras

    keras.utils.set_random_seed(0)
    backbone = registry.get_backbone(name)
    size = SMALL_SIZE[name]
    classifier = build_classifier(backbone, 4, size, weights=None)
    base = classifier.get_layer("base")
    assert base.layers[-1].name == backbone.last_conv_layer  # the map Grad-CAM uses
    assert head_of(classifier)[-1].name == "logits"
    assert registry.describe_preprocessing(backbone)

    pixels = random_pixels(2, size)
    probabilities = classifier.predict(pixels, verbose=0)
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    export_model = build_export_model(classifier)
    exported_probabilities, cam = export_model.predict(pixels.astype(np.uint8), verbose=0)
    _, h, w, _ = base.output.shape
    assert cam.shape == (2, h, w, 4)
    np.testing.assert_allclose(exported_probabilities, probabilities, atol=1e-5)
    assert np.all(cam >= 0)


@pytest.mark.parametrize("name", FROM_SCRATCH)
def test_from_scratch_networks_train_whole_and_refuse_imagenet(name):
    backbone = registry.get_backbone(name)
    assert not backbone.supports_imagenet and not backbone.frozen_base
    with pytest.raises(ValueError):
        backbone.build_base((SMALL_SIZE[name],) * 2 + (backbone.input_channels,), "imagenet")


def test_weights_file_loads_into_a_from_scratch_base(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    backbone = registry.get_backbone("mnist_convnet")
    trained = build_classifier(backbone, 10, 28, weights=None)
    path = tmp_path / "base.weights.h5"
    trained.get_layer("base").save_weights(path)
    loaded = build_classifier(backbone, 10, 28, weights=str(path))
    pixels = random_pixels(3, 28)
    features = build_feature_model(trained).predict(pixels, verbose=0)[0]
    np.testing.assert_allclose(build_feature_model(loaded).predict(pixels, verbose=0)[0], features, atol=1e-6)


# --- parameter counts (the published figures) ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(registry.BACKBONES))
def test_recorded_description_matches_the_built_network(name):
    """`convnet-train models` prints what each network records about itself without building
    it; building it must give the same parameter and multiply-add counts and layers."""
    import gc

    from training.summary import count_multiply_adds

    info, backbone = NETWORKS[name], registry.get_backbone(name)
    model = backbone.build_full_model()
    assert (model.count_params(), count_multiply_adds(model)) == (info.parameters, info.multiply_adds)
    assert tuple(model.input.shape[1:3]) == (info.default_image_size,) * 2
    assert model.output.shape[-1] == info.top_classes
    assert backbone.supports_imagenet == info.pretrained
    base = backbone.build_base((info.min_image_size,) * 2 + (backbone.input_channels,), None)
    assert base.layers[-1].name == info.last_conv_layer
    del model, base
    gc.collect()


def test_multiply_adds_of_a_small_network_by_hand():
    import keras

    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)  # 8x8 positions x 3x3x3 taps x 4 filters
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 8x8 x 3x3 x 4
    x = keras.layers.SeparableConv2D(5, 3)(x)  # 6x6 x (3x3x4 + 4x5)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)  # 5 x 2
    from training.summary import count_multiply_adds

    expected = 8 * 8 * 27 * 4 + 8 * 8 * 9 * 4 + 6 * 6 * (9 * 4 + 4 * 5) + 5 * 2
    assert count_multiply_adds(keras.Model(inputs, outputs)) == expected


def test_mnist_convnet_has_the_course_notes_93322_parameters():
    backbone = registry.get_backbone("mnist_convnet")
    assert backbone.build_full_model(10, image_size=28).count_params() == 93_322
    # The studio classifier adds only parameter-free preprocessing to it.
    assert build_classifier(backbone, 10, 28, weights=None).count_params() == 93_322
    shapes = [tuple(layer.output.shape[1:]) for layer in backbone.build_full_model(10).layers[1:]]
    assert shapes[:6] == [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64), (576,)]


def test_lenet5_classic_has_61706_parameters():
    assert registry.get_backbone("lenet5").build_full_model(10, image_size=32).count_params() == 61_706


def test_vgg16_with_its_imagenet_top_has_138357544_parameters():
    assert registry.get_backbone("vgg16").build_full_model(1000).count_params() == 138_357_544


def test_resnet50_with_its_imagenet_top_has_25636712_parameters():
    assert registry.get_backbone("resnet50").build_full_model(1000).count_params() == 25_636_712


# --- preprocessing --------------------------------------------------------------------------


def test_caffe_preprocessing_matches_keras_applications():
    import keras

    pixels = random_pixels(4, 16, seed=7)
    layers = registry.preprocessing_layers(registry.get_backbone("vgg16"))
    x = pixels
    for layer in layers:
        x = layer(x)
    expected = keras.applications.vgg16.preprocess_input(pixels.copy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(x), expected, atol=1e-4)
    resnet = registry.preprocessing_layers(registry.get_backbone("resnet50"))
    assert [type(layer) for layer in resnet] == [type(layer) for layer in layers]


def test_caffe_layer_reloads_in_safe_mode_and_converts_to_onnx(tmp_path):
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from training.layers import CaffePreprocess

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, CaffePreprocess(name="preprocess_caffe")(inputs))
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    pixels = random_pixels(2, 8)
    np.testing.assert_allclose(reloaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0))

    proto, _ = tf2onnx.convert.from_keras(
        model, input_signature=(tf.TensorSpec((None, 8, 8, 3), tf.float32),), opset=17
    )
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: pixels})
    np.testing.assert_allclose(onnx_out, keras.applications.vgg16.preprocess_input(pixels.copy()), atol=1e-4)


def test_raw_preprocessing_adds_no_layers():
    backbone = registry.get_backbone("efficientnet_b0")
    assert registry.preprocessing_layers(backbone) == []
    with pytest.raises(ValueError):
        registry.preprocessing_layers(backbone, normalize_polarity=True)


# --- GoogLeNet auxiliary classifiers --------------------------------------------------------


def test_googlenet_aux_classifiers_exist_only_in_the_training_graph():
    import keras

    keras.utils.set_random_seed(0)
    backbone = registry.get_backbone("googlenet")
    classifier = build_classifier(backbone, 5, 64, weights=None)
    graph = build_training_model(classifier, backbone, 5)
    assert graph.loss_weights == {"probabilities": 1.0, "aux1": 0.3, "aux2": 0.3}
    assert graph.main_output == "probabilities"
    assert set(graph.model.output_names) == {"probabilities", "aux1", "aux2"}

    def all_layer_names(model):
        names = []
        for layer in model.layers:
            names.append(layer.name)
            if isinstance(layer, keras.Model):
                names.extend(all_layer_names(layer))
        return names

    assert not [n for n in all_layer_names(classifier) if n.startswith("aux")]
    export_model = build_export_model(classifier)
    assert len(export_model.outputs) == 2
    assert not [n for n in all_layer_names(export_model) if n.startswith("aux")]
    # The training graph owns exactly the classifier's weights plus the aux heads'.
    classifier_ids = {id(v) for v in classifier.weights}
    training_ids = {id(v) for v in graph.model.weights}
    assert classifier_ids <= training_ids
    extra = [v for v in graph.model.weights if id(v) not in classifier_ids]
    assert extra and all(v.path.startswith("aux") for v in extra)


@pytest.mark.slow
def test_training_the_googlenet_graph_updates_the_classifier():
    import keras

    keras.utils.set_random_seed(1)
    backbone = registry.get_backbone("googlenet")
    classifier = build_classifier(backbone, 3, 32, weights=None)
    graph = build_training_model(classifier, backbone, 3)
    graph.model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss={name: keras.losses.SparseCategoricalCrossentropy() for name in graph.loss_weights},
        loss_weights=graph.loss_weights,
    )
    pixels = random_pixels(8, 32)
    labels = np.arange(8) % 3
    before = classifier.predict(pixels, verbose=0)
    outputs = graph.model.predict(pixels, verbose=0)
    assert outputs["aux1"].shape == outputs["aux2"].shape == (8, 3)
    np.testing.assert_allclose(outputs["probabilities"], before, atol=1e-5)
    graph.model.train_on_batch(pixels, graph.targets(labels))
    after = classifier.predict(pixels, verbose=0)
    assert np.max(np.abs(after - before)) > 1e-4
    np.testing.assert_allclose(graph.model.predict(pixels, verbose=0)["probabilities"], after, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet", "allconv"])
def test_exported_onnx_matches_keras_and_has_no_aux_branch(name):
    import keras
    import onnxruntime as ort

    from training.export import convert_to_onnx

    keras.utils.set_random_seed(2)
    backbone = registry.get_backbone(name)
    size = backbone.min_image_size
    classifier = build_classifier(backbone, 4, size, weights=None)
    export_model = build_export_model(classifier)
    proto = convert_to_onnx(export_model, size)
    assert not [node.name for node in proto.graph.node if "aux" in node.name.lower()]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    images = random_pixels(3, size).astype(np.uint8)
    probabilities, cam = session.run(["probabilities", "cam"], {"image": images})
    keras_probabilities, keras_cam = export_model.predict(images, verbose=0)
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)
    np.testing.assert_allclose(cam, keras_cam, atol=1e-4 * max(1.0, float(np.abs(keras_cam).max())))


def test_googlenet_aux_heads_have_the_paper_shapes_at_224():
    backbone = registry.get_backbone("googlenet")
    classifier = build_classifier(backbone, 1000, 224, weights=None)
    graph = build_training_model(classifier, backbone, 1000)
    for name in ("aux1", "aux2"):
        # 14x14 -> 5x5/3 average pool -> 4x4x128 -> 2048 -> 1024 -> classes
        assert tuple(graph.model.get_layer(f"{name}_pool").output.shape[1:]) == (4, 4, 512 if name == "aux1" else 528)
        assert graph.model.get_layer(f"{name}_flatten").output.shape[-1] == 2048
    assert tuple(classifier.get_layer("base").output.shape[1:]) == (7, 7, 1024)


def test_networks_without_aux_taps_train_the_classifier_itself():
    backbone = registry.get_backbone("lenet5")
    classifier = build_classifier(backbone, 10, 32, weights=None)
    graph = build_training_model(classifier, backbone, 10)
    assert graph.model is classifier
    assert graph.loss_weights == {"probabilities": 1.0}
    labels = np.arange(4)
    assert graph.targets(labels) is labels


# --- learning real data ---------------------------------------------------------------------

# Every from-scratch network learns the digits at its smallest input size, for the epochs
# its description asks (`digits_test_epochs`), to this held-out accuracy (10 classes,
# chance 0.1). Measured on 2 CPU cores (600 train / 300 held out, Adam 1e-3, batch 32):
# lenet5 0.94, mnist_convnet 0.91, allconv 0.95, alexnet 0.93, googlenet 0.96.
LEARNED_ACCURACY = 0.6
# Networks above the "very fast" speed hint (training.networks.info.speed_hint) take
# minutes to train here: those run with the slow tests.
VERY_FAST_MULTIPLY_ADDS = 50_000_000
LEARNING = [
    pytest.param(
        name,
        NETWORKS[name].min_image_size,
        NETWORKS[name].digits_test_epochs,
        LEARNED_ACCURACY,
        id=name,
        marks=[pytest.mark.slow] if NETWORKS[name].multiply_adds >= VERY_FAST_MULTIPLY_ADDS else [],
    )
    for name in FROM_SCRATCH
]


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))[:900]
    return (data.images[order] * 255.0 / 16.0).astype(np.float32), data.target[order]


def upsampled(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    resized = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in images])
    return np.repeat(resized[..., None], 3, axis=-1)


@pytest.mark.parametrize("name, size, epochs, threshold", LEARNING)
def test_from_scratch_network_learns_digits(digits, name, size, epochs, threshold):
    import keras

    keras.utils.set_random_seed(1)
    images, labels = digits
    x = upsampled(images, size)
    backbone = registry.get_backbone(name)
    started = time.perf_counter()
    classifier = build_classifier(backbone, 10, size, weights=None)
    graph = build_training_model(classifier, backbone, 10)
    graph.model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={output: keras.losses.SparseCategoricalCrossentropy() for output in graph.loss_weights},
        loss_weights=graph.loss_weights,
    )
    graph.model.fit(x[:600], graph.targets(labels[:600]), epochs=epochs, batch_size=32, verbose=0)
    accuracy = float(np.mean(classifier.predict(x[600:], verbose=0).argmax(axis=1) == labels[600:]))
    print(
        f"{name} at {size}x{size}, {epochs} epochs: held-out accuracy {accuracy:.3f} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    assert accuracy >= threshold
