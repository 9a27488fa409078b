"""`training.summary`: the model listing and the per-network layer tables."""

from __future__ import annotations

from training import registry, summary


def test_list_models_without_parameters_builds_nothing_and_covers_the_registry():
    rows = summary.list_models(with_params=False)
    assert [row.name for row in rows] == list(registry.BACKBONES)
    assert all(row.parameters is None for row in rows)
    by_name = {row.name: row for row in rows}
    assert by_name["resnet50"].training == "pretrained"
    assert by_name["googlenet"].training == "from scratch"
    assert by_name["inception_v3"].default_image_size == 299
    table = summary.format_models_table(rows)
    for name in registry.BACKBONES:
        assert name in table
    assert len(table.splitlines()) == len(rows) + 2


def test_format_models_table_shows_parameter_counts():
    row = summary.ModelRow(
        name="mnist_convnet", family="LeNet", summary="s", default_image_size=28, min_image_size=20,
        preprocessing="grey01", last_conv_layer="conv3", training="from scratch", top_classes=10, parameters=93_322,
    )
    assert "93,322 (10 classes)" in summary.format_models_table([row])


def test_parameter_count_of_published_networks():
    assert summary.parameter_count("mnist_convnet", 10, True) == 93_322
    assert summary.parameter_count("lenet5", 10, True) == 61_706
    assert summary.parameter_count("lenet5", None, True) == 61_706  # 10 classes by default
    assert summary.parameter_count("resnet50", 1000, True) == 25_636_712
    assert summary.parameter_count("vgg16", 1000, True) == 138_357_544


def test_parameter_count_of_the_fine_tuning_classifier():
    # VGG16 without its top, cut at block5_conv3 (14,714,688) + a 512 -> 5 Dense.
    assert summary.parameter_count("vgg16", 5, False, image_size=32) == 14_714_688 + 512 * 5 + 5


def test_summary_text_of_the_original_network():
    text = summary.summary_text("mnist_convnet", include_top=True)
    for expected in ("conv3", "(None, 3, 3, 64)", "36,928", "Total params: 93,322", "Param #"):
        assert expected in text


def test_summary_text_of_the_fine_tuning_classifier_expands_the_base():
    text = summary.summary_text("vgg16", classes=3, image_size=32)
    for expected in ("preprocess_caffe", "block5_conv3", "logits", "Total params: 14,716,227"):
        assert expected in text
    assert "block5_pool" not in text
    assert "Total params: 61,706" in summary.summary_text("lenet5", classes=10)
