"""A network is one module in training/networks: the registry finds it, nothing else lists it.

`training.networks.discover` reads every module of a package that declares `NETWORK` or
`NETWORKS`; these tests drop a new module into a package of their own and see it picked
up, built and run, and check that the real registry holds exactly what the modules of
training/networks declare.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
import textwrap

import numpy as np
import pytest

TINY_NETWORK = """
from training.networks.info import NetworkInfo


def tiny_features(inputs):
    from keras import layers

    return layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)


def tiny_head(num_classes):
    from keras import layers

    return [layers.GlobalAveragePooling2D(name="head_pool"), layers.Dense(num_classes, name="logits")]


NETWORK = NetworkInfo(
    name="tiny", summary="a test network", family="Test", reference="none", default_image_size=16,
    min_image_size=8, preprocessing="tf", last_conv_layer="conv1", parameters=0, multiply_adds=0,
    features=tiny_features, head=tiny_head,
)
"""


@pytest.fixture
def package_with_a_new_network(tmp_path, monkeypatch):
    """A package like training/networks: a network module, a helper that declares nothing,
    and a private module that must never be imported."""
    package = tmp_path / "more_networks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tiny.py").write_text(textwrap.dedent(TINY_NETWORK))
    (package / "helpers.py").write_text("WIDTH = 4\n")
    (package / "_private.py").write_text("raise RuntimeError('a module starting with _ is not read')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield "more_networks"
    for name in [name for name in sys.modules if name.startswith("more_networks")]:
        del sys.modules[name]


def test_a_network_module_dropped_into_the_package_is_discovered(package_with_a_new_network):
    from training.networks import discover

    networks = discover(package_with_a_new_network)
    assert list(networks) == ["tiny"]
    assert networks["tiny"].last_conv_layer == "conv1"


def test_the_registry_builds_a_discovered_network_from_its_description(package_with_a_new_network):
    from training import registry
    from training.model_builder import build_classifier, build_export_model
    from training.networks import discover

    backbone = registry.backbone_for(discover(package_with_a_new_network)["tiny"])
    assert not backbone.supports_imagenet and not backbone.frozen_base
    classifier = build_classifier(backbone, 3, 16, weights=None)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    probabilities, cam = build_export_model(classifier).predict(pixels, verbose=0)
    assert probabilities.shape == (2, 3) and cam.shape == (2, 14, 14, 3)


def test_two_modules_declaring_the_same_name_are_refused(package_with_a_new_network, tmp_path):
    from training.networks import discover

    (tmp_path / package_with_a_new_network / "tiny_again.py").write_text(textwrap.dedent(TINY_NETWORK))
    importlib.invalidate_caches()
    with pytest.raises(ValueError, match="'tiny'"):
        discover(package_with_a_new_network)


def test_the_registry_holds_exactly_what_the_network_modules_declare():
    import training.networks
    from training import registry

    declared = set()
    for module_info in pkgutil.iter_modules(training.networks.__path__):
        module = importlib.import_module(f"training.networks.{module_info.name}")
        declared |= {info.name for info in getattr(module, "NETWORKS", ())}
        declared |= {module.NETWORK.name} if hasattr(module, "NETWORK") else set()
    assert set(registry.BACKBONES) == declared
    assert list(registry.BACKBONES) == list(training.networks.NETWORKS)


def test_a_description_without_constructor_or_application_is_refused():
    from training import registry
    from training.networks import NETWORKS

    with pytest.raises(ValueError, match="neither"):
        registry.backbone_for(dataclasses.replace(NETWORKS["lenet5"], name="broken", features=None))
