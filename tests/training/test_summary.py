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
        name="mnist_convnet",
        family="LeNet",
        summary="s",
        default_image_size=28,
        min_image_size=20,
        preprocessing="grey01",
        last_conv_layer="conv3",
        training="from scratch",
        top_classes=10,
        parameters=93_322,
        multiply_adds=2_794_240,
    )
    table = summary.format_models_table([row])
    assert "93,322 (10 classes)" in table and "3 M (very fast)" in table


def test_list_models_reads_what_each_network_records():
    from training.networks import NETWORKS

    rows = summary.list_models()
    assert [(row.name, row.parameters, row.multiply_adds) for row in rows] == [
        (info.name, info.parameters, info.multiply_adds) for info in NETWORKS.values()
    ]
    for row in rows:  # the registry builds what the listing describes
        backbone = registry.get_backbone(row.name)
        assert (row.default_image_size, row.last_conv_layer, row.preprocessing, row.top_classes) == (
            backbone.default_image_size,
            backbone.last_conv_layer,
            backbone.preprocessing,
            backbone.top_classes,
        )
        assert row.training == ("pretrained" if backbone.supports_imagenet else "from scratch")


def test_speed_hint_orders_networks_by_their_work():
    from training.networks.info import speed_hint

    assert speed_hint(416_520) == "417 k (very fast)"
    assert speed_hint(300_774_272) == "301 M (fast)"
    assert speed_hint(3_857_973_248) == "3.9 G (moderate)"
    assert speed_hint(15_470_264_320) == "15.5 G (slow)"


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


def test_models_table_fits_a_terminal_by_cutting_descriptions():
    rows = summary.list_models()
    full = summary.format_models_table(rows)
    assert max(len(line) for line in full.splitlines()) > 120  # the case worth handling
    narrow = summary.format_models_table(rows, width=140)
    assert max(len(line) for line in narrow.splitlines()) <= 140
    assert "…" in narrow
    # every other column is kept whole
    for row in rows:
        assert f"{row.parameters:,}" in narrow and row.name in narrow
