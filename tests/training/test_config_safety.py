"""Training configuration files: yaml.safe_load only, size-limited, one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import cli
from training.config import MAX_CONFIG_BYTES, TrainConfig, load_yaml_limited


def test_saved_config_reads_back(tmp_path: Path) -> None:
    config = TrainConfig(data_dir="data", out="runs/x", image_size=64, val_dir=None, augmentation={"zoom": 0.1})
    config.save(tmp_path / "config.yaml")
    assert TrainConfig.load(tmp_path / "config.yaml") == config


def test_hand_written_unfreeze_count_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data_dir: d\nout: o\nunfreeze: 30\nlearning_rate: 1\n")
    config = TrainConfig.load(path)
    assert config.unfreeze == "30" and config.learning_rate == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "data_dir: d\nout: o\nseed: !!python/object/apply:os.system ['touch PWNED']\n",
            r"c\.yaml is not valid YAML \(could not determine a constructor for the tag .*python/object/apply",
        ),
        ("a: &x [1, 2]\nb: &y [*x, *x]\n", r"c\.yaml uses a YAML alias \(\*x\)"),
        ("data_dir: d\nout: o\nepochs: ten\n", r"c\.yaml: 'epochs' must be int, got str 'ten'"),
        ("data_dir: d\nout: o\nepochs: true\n", r"'epochs' must be int, got bool"),
        ("data_dir: d\nout: o\nlearning_rate: fast\n", r"'learning_rate' must be a number"),
        ("data_dir: d\nout: o\nbackbone: [vgg16]\n", r"'backbone' must be str, got list"),
        ("data_dir: d\n", r"c\.yaml: missing configuration key\(s\): out"),
        ("data_dir: d\nout: o\nlearning_rat: 0.1\n", r"unknown configuration key\(s\): learning_rat"),
        ("[" * 3000 + "]" * 3000, r"c\.yaml is nested too deeply to read"),
        ("data_dir: d\n  out: o: p\n", r"c\.yaml is not valid YAML \(.* at line 2 column \d+\)"),
        ("- just\n- a list\n", r"c\.yaml: expected a mapping of configuration keys"),
    ],
)
def test_bad_config_is_refused_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=expected) as caught:
        TrainConfig.load(path)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


def test_oversized_or_binary_config(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ValueError, match=r"big\.yaml is 1,000,001 bytes, above the 1,000,000-byte limit"):
        TrainConfig.load(big)
    binary = tmp_path / "photo.yaml"
    binary.write_bytes(b"\xff\xd8\xff\xe0JFIF")
    with pytest.raises(ValueError, match=r"photo\.yaml is not UTF-8 text"):
        TrainConfig.load(binary)
    with pytest.raises(ValueError, match=r"absent\.yaml cannot be read \(No such file or directory\)"):
        load_yaml_limited(tmp_path / "absent.yaml")


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data_dir: d\nout: o\nepochs: ten\n")
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"convnet-train: error: {path}: 'epochs' must be int, got str 'ten'"]
    assert cli.main(["train", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml cannot be read" in capsys.readouterr().err
