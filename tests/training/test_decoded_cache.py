"""The in-memory decoded pipeline gives the streaming pipeline's batches (pixels, labels,
order, epoch after epoch, augmentation included), respects its memory budget (a folder
that does not fit streams instead), and never serves a rewritten file stale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training import data, decoded_cache
from training.augment import PRESETS, build_augmentation

SIZE = 24


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[data.Sample]:
    """19 random JPEGs of different sizes in 3 classes (19: the last batch is short)."""
    root = tmp_path_factory.mktemp("decoded")
    rng = np.random.default_rng(7)
    for index in range(19):
        folder = root / f"class{index % 3}"
        folder.mkdir(exist_ok=True)
        height, width = rng.integers(20, 90, size=2)
        cv2.imwrite(str(folder / f"{index:02d}.jpg"), rng.integers(0, 256, (height, width, 3), np.uint8))
    return data.scan_class_folders(root).samples


def epochs_of(dataset, count: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    return [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(count)]


def pipeline(samples, cache: bool, augmentation=None, shuffle: bool = True):
    import keras

    keras.utils.set_random_seed(3)  # as the trainer does before building its pipelines
    return data.make_dataset(
        samples, SIZE, batch_size=5, shuffle=shuffle, seed=3, num_classes=3, augmentation=augmentation, cache=cache
    )


def assert_same_epochs(first, second) -> None:
    assert len(first) == len(second)
    for epoch_a, epoch_b in zip(first, second, strict=True):
        assert [len(y) for _, y in epoch_a] == [len(y) for _, y in epoch_b]
        for (x_a, y_a), (x_b, y_b) in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(y_a, y_b)
            np.testing.assert_array_equal(x_a, x_b)


def test_cached_batches_equal_streamed_batches_over_epochs(samples) -> None:
    decoded_cache.STORE.clear()
    cached = epochs_of(pipeline(samples, cache=True), 3)
    assert decoded_cache.STORE.held_bytes() == decoded_cache.decoded_bytes(len(samples), SIZE)
    streamed = epochs_of(pipeline(samples, cache=False), 3)
    assert_same_epochs(cached, streamed)
    # The order really is shuffled, and differently each epoch (else the check above is weak).
    orders = [np.concatenate([y.argmax(1) for _, y in epoch]) for epoch in cached]
    assert not all(np.array_equal(orders[0], order) for order in orders[1:])
    assert sorted(np.concatenate([x.reshape(len(x), -1).sum(1) for x, _ in cached[0]])) == sorted(
        np.concatenate([x.reshape(len(x), -1).sum(1) for x, _ in cached[1]])
    )


def test_pixels_are_the_decoders_and_labels_the_samples(samples) -> None:
    (batches,) = epochs_of(pipeline(samples, cache=True, shuffle=False), 1)
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y.argmax(1) for _, y in batches])
    expected, expected_labels = data.load_batch(samples, SIZE)
    np.testing.assert_array_equal(images, expected.astype(np.float32))
    np.testing.assert_array_equal(labels, expected_labels)


def test_augmented_batches_match_under_the_same_seed(samples) -> None:
    """--deterministic's promise: the same seed gives the same augmented batches, cached or not."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    spec = PRESETS["seed"]
    cached = epochs_of(pipeline(samples, True, build_augmentation(spec, seed=3)), 2)
    again = epochs_of(pipeline(samples, True, build_augmentation(spec, seed=3)), 2)
    streamed = epochs_of(pipeline(samples, False, build_augmentation(spec, seed=3)), 2)
    assert_same_epochs(cached, again)
    assert_same_epochs(cached, streamed)
    plain = epochs_of(pipeline(samples, True), 1)[0]
    assert not np.array_equal(cached[0][0][0], plain[0][0])  # augmentation did change the pixels


def test_over_budget_streams_and_decodes_nothing(samples, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded_cache.STORE.clear()
    needed = decoded_cache.decoded_bytes(len(samples), SIZE)
    monkeypatch.setenv(decoded_cache.BUDGET_VARIABLE, str((needed - 1) / 2**20))
    assert decoded_cache.memory_budget_bytes() == needed - 1
    over = epochs_of(pipeline(samples, cache=True), 1)
    assert decoded_cache.STORE.held_bytes() == 0  # nothing kept: it streamed
    monkeypatch.setenv(decoded_cache.BUDGET_VARIABLE, str(needed / 2**20))
    within = epochs_of(pipeline(samples, cache=True), 1)
    assert decoded_cache.STORE.held_bytes() == needed
    assert_same_epochs(over, within)


def test_budget_evicts_the_oldest_split(samples) -> None:
    store = decoded_cache.DecodedStore()
    first, second = samples[:10], samples[10:]
    one = decoded_cache.decoded_bytes(10, SIZE)
    store.get([s.path for s in first], [s.label for s in first], SIZE, budget=one)
    store.get([s.path for s in second], [s.label for s in second], SIZE, budget=one)
    assert store.held_bytes() == decoded_cache.decoded_bytes(len(second), SIZE) <= one


def test_store_keeps_at_most_two_splits(samples) -> None:
    store = decoded_cache.DecodedStore()
    for part in (samples[:5], samples[5:10], samples[10:15]):
        store.get([s.path for s in part], [s.label for s in part], SIZE, budget=10**9)
    assert store.held_bytes() == 2 * decoded_cache.decoded_bytes(5, SIZE)


def test_budget_is_never_above_half_the_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(decoded_cache.BUDGET_VARIABLE, "100000000")
    monkeypatch.setattr(decoded_cache, "available_memory_bytes", lambda: 1000)
    assert decoded_cache.memory_budget_bytes() == 500
    monkeypatch.setenv(decoded_cache.BUDGET_VARIABLE, "lots")
    monkeypatch.setattr(decoded_cache, "available_memory_bytes", lambda: None)
    assert decoded_cache.memory_budget_bytes() == decoded_cache.DEFAULT_BUDGET_MB * 2**20


def test_rewritten_file_is_decoded_again(tmp_path: Path) -> None:
    for name, value in (("a", 10), ("b", 200)):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "x.png"), np.full((8, 8, 3), value, np.uint8))
    found = data.scan_class_folders(tmp_path).samples
    store = decoded_cache.DecodedStore()
    paths, labels = [s.path for s in found], [s.label for s in found]
    before = store.get(paths, labels, 8, budget=10**6).images.copy()
    cv2.imwrite(found[0].path, np.full((8, 8, 3), 99, np.uint8))
    import os

    os.utime(found[0].path, ns=(1, 1))  # a different stamp even on a coarse clock
    after = store.get(paths, labels, 8, budget=10**6).images
    assert not np.array_equal(before[0], after[0])
    assert after[0].max() == 99


# --- whole-batch augmentation: one resampling for the geometric steps ------------------------


def gradient_batch(count: int = 8, size: int = 48) -> np.ndarray:
    """Smooth ramps: bilinear resampling of a linear image is exact, so one resampling and
    four in turn agree wherever no edge fill is involved."""
    rows, columns = np.mgrid[0:size, 0:size]
    image = np.stack([columns * 4.0, rows * 4.0, (rows + columns) * 2.0], -1).astype(np.float32)
    return np.repeat(image[None], count, axis=0)


@pytest.mark.parametrize(
    "fields",
    [{"rotation_degrees": 50}, {"width_shift": 0.2, "height_shift": 0.2}, {"shear": 0.2}, {"zoom": 0.3}],
)
def test_one_geometric_step_is_exactly_the_keras_layer(fields) -> None:
    import keras

    from training.augment import AugmentSpec, build_sequential_augmentation

    spec, batch = AugmentSpec(**fields), gradient_batch()
    keras.utils.set_random_seed(1)
    fused = keras.ops.convert_to_numpy(build_augmentation(spec, seed=1)(batch))
    keras.utils.set_random_seed(1)
    layer = keras.ops.convert_to_numpy(build_sequential_augmentation(spec, seed=1)(batch))
    assert not np.array_equal(fused, batch)
    np.testing.assert_array_equal(fused, layer)


def test_seed_preset_composes_to_the_layers_in_turn() -> None:
    """All four geometric steps (and the flip) at once: away from the filled edges, one
    resampling by the product equals the four layers applied one after another."""
    import keras

    from training.augment import build_sequential_augmentation

    batch = gradient_batch(count=16, size=64)
    keras.utils.set_random_seed(2)
    fused = keras.ops.convert_to_numpy(build_augmentation(PRESETS["seed"], seed=2)(batch))
    keras.utils.set_random_seed(2)
    in_turn = keras.ops.convert_to_numpy(build_sequential_augmentation(PRESETS["seed"], seed=2)(batch))
    centre = slice(24, 40)
    difference = np.abs(fused - in_turn)[:, centre, centre]
    assert np.median(difference) < 0.05, np.median(difference)
    assert np.abs(fused - batch).mean() > 5  # the images did move


def test_the_reader_serves_held_pixels_and_decodes_anything_else(samples, tmp_path) -> None:
    """The run's calibration and report read the validation split through this stand-in."""
    from convnet_common.imaging import ImageReadError, load_image_for_model

    decoded_cache.STORE.clear()
    paths = [s.path for s in samples]
    assert decoded_cache.STORE.reader(paths, SIZE) is load_image_for_model  # nothing held yet
    held = decoded_cache.STORE.get(paths, [s.label for s in samples], SIZE, budget=10**9)
    read = decoded_cache.STORE.reader(paths, SIZE)
    assert read is not load_image_for_model
    for index, path in enumerate(paths):
        image = read(path, SIZE, SIZE)
        assert image is held.images[index] or np.shares_memory(image, held.images)  # from memory
        np.testing.assert_array_equal(image, load_image_for_model(path, SIZE, SIZE))
    assert read(paths[0], SIZE + 1, SIZE + 1).shape == (SIZE + 1, SIZE + 1, 3)  # another size: decoded
    assert decoded_cache.STORE.reader(paths, SIZE + 1) is load_image_for_model
    assert decoded_cache.STORE.reader(paths[:-1], SIZE) is load_image_for_model  # not the held split

    # A file unreadable when it was decoded (a blank stood in for training) fails as it would.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    decoded_cache.STORE.clear()
    decoded_cache.STORE.get([str(broken), *paths], [0] + [s.label for s in samples], SIZE, budget=10**9)
    with pytest.raises(ImageReadError):
        decoded_cache.STORE.reader([str(broken), *paths], SIZE)(str(broken), SIZE, SIZE)

    # A file rewritten since it was decoded is never served stale.
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(Path(paths[0]).read_bytes())
    decoded_cache.STORE.clear()
    decoded_cache.STORE.get([str(copy)], [0], SIZE, budget=10**9)
    cv2.imwrite(str(copy), np.full((30, 30, 3), 200, np.uint8))
    assert decoded_cache.STORE.reader([str(copy)], SIZE) is load_image_for_model
    decoded_cache.STORE.clear()
