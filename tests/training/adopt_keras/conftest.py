"""Module-scoped foreign models for the adopt reader tests (factories in foreign_keras_models.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from foreign_keras_models import make_lobe_savedmodel, make_rescaling_keras, make_teachable_machine


@pytest.fixture(scope="module")
def rescaling_keras(tmp_path_factory) -> Path:
    return make_rescaling_keras(tmp_path_factory.mktemp("keras") / "classifier.keras")


@pytest.fixture(scope="module")
def teachable_machine(tmp_path_factory) -> Path:
    return make_teachable_machine(tmp_path_factory.mktemp("tm") / "converted_keras")


@pytest.fixture(scope="module")
def lobe_savedmodel(tmp_path_factory) -> Path:
    return make_lobe_savedmodel(tmp_path_factory.mktemp("lobe") / "fruit TensorFlow")
