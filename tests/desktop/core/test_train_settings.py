"""Train tab settings → the convnet-train command line, saved with the run and read back;
fresh run folders; the backbone list from `convnet-train models --json` (a fake one here,
and the real one), and the table an older convnet-train without --json prints instead."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from desktop.core.train_settings import (
    TrainSettings,
    advanced_args,
    export_argv,
    fresh_run_dir,
    list_backbones,
    load_settings,
    parse_models_json,
    parse_models_table,
    resume_argv,
    save_settings,
    train_argv,
)
from desktop.core.trainer_launcher import THIS_PYTHON, Launcher

LAUNCHER = Launcher(("/env/bin/python", "-m", "training.cli"), "test", THIS_PYTHON)
ROOT = Path(__file__).resolve().parents[3]

MODELS_TABLE = """\
name             family             input    min  parameters                  multiply-adds      training      description
---------------  -----------------  -------  ---  --------------------------  -----------------  ------------  -----------------------------------------------------------------------------------------------
mobilenet_v2     MobileNet          224x224   32  3,538,984 (1000 classes)    301 M (fast)       pretrained    MobileNetV2 (keras.applications): depthwise-separable, inverted residuals
lenet5           LeNet              32x32     28  61,706 (10 classes)         417 k (very fast)  from scratch  LeNet-5 (LeCun 1998): two tanh convolutions, average pooling, 120-84 dense head

multiply-adds: the work for one image at the input size, a speed hint independent of the machine.
"""

MODELS_JSON = json.dumps(
    {
        "version": 1,
        "networks": [
            {
                "name": "mobilenet_v2",
                "family": "MobileNet",
                "imagenet_weights": True,
                "default_weights": "imagenet",
                "input_size": 224,
                "min_input_size": 32,
                "top_classes": 1000,
                "parameters": 3538984,
                "multiply_adds": 300774272,
                "speed": "301 M (fast)",
                "description": "MobileNetV2 (keras.applications): depthwise-separable, inverted residuals",
            },
            {
                "name": "lenet5",
                "family": "LeNet",
                "imagenet_weights": False,
                "default_weights": "none",
                "input_size": 32,
                "min_input_size": 28,
                "top_classes": 10,
                "parameters": 61706,
                "multiply_adds": 416520,
                "speed": "417 k (very fast)",
                "description": "LeNet-5 (LeCun 1998): two tanh convolutions, average pooling, 120-84 dense head",
            },
        ],
    }
)


def settings(tmp_path: Path, **changes) -> TrainSettings:
    values = {"data_dir": str(tmp_path / "pets"), "run_dir": str(tmp_path / "runs" / "r1")} | changes
    return TrainSettings(**values)


def test_argv_for_a_pretrained_preset(tmp_path: Path):
    argv = train_argv(LAUNCHER, settings(tmp_path, preset="quick", augment="seed"))
    assert argv[:5] == ["/env/bin/python", "-m", "training.cli", "train", str(tmp_path / "pets")]
    assert argv[5:7] == ["--out", str(tmp_path / "runs" / "r1")]
    assert argv[7:] == [
        "--backbone=mobilenet_v2",
        "--epochs=3",
        "--fine-tune-epochs=2",
        "--augment=seed",
        "--progress",
        "jsonl",
    ]


def test_from_scratch_has_one_stage_and_advanced_overrides_the_preset(tmp_path: Path):
    chosen = settings(
        tmp_path,
        backbone="lenet5",
        weights="none",
        preset="best",
        augment="aug.yaml",
        advanced={"epochs": 7, "label_smoothing": 0.1, "--tensorboard": False, "deterministic": True, "seed": None},
    )
    argv = train_argv(LAUNCHER, chosen)
    tail = argv[argv.index("--backbone=lenet5") :]
    assert tail == [
        "--backbone=lenet5",
        "--weights=none",
        f"--augment={Path('aug.yaml').resolve()}",
        "--epochs=7",
        "--label-smoothing=0.1",
        "--no-tensorboard",
        "--deterministic",
        "--progress",
        "jsonl",
    ]
    assert "--fine-tune-epochs=60" not in argv
    assert train_argv(LAUNCHER, settings(tmp_path, preset="best"), pretrained=False).count("--epochs=60") == 1


def test_values_cannot_become_options_and_reserved_options_are_refused():
    assert advanced_args({"learning-rate": -1}) == ["--learning-rate=-1"]
    for bad in ({"out": "x"}, {"--progress": "none"}, {"no-resume": True}, {"Bad Name": 1}, {"x": [1]}, {"x": "a\nb"}):
        with pytest.raises(ValueError):
            advanced_args(bad)
    with pytest.raises(ValueError, match="unknown preset"):
        train_argv(LAUNCHER, TrainSettings("d", "r", preset="forever"))


def test_resume_and_export_argv(tmp_path: Path):
    assert resume_argv(LAUNCHER, tmp_path)[3:] == ["train", "--resume", str(tmp_path), "--progress", "jsonl"]
    argv = export_argv(LAUNCHER, tmp_path, tmp_path / "m.onnx", "int8")
    assert argv[3:] == ["export", str(tmp_path), f"--out={tmp_path / 'm.onnx'}", "--precision=int8"]
    with pytest.raises(ValueError):
        export_argv(LAUNCHER, tmp_path, "m.onnx", "fp8")


def test_settings_round_trip_next_to_the_run(tmp_path: Path):
    chosen = settings(tmp_path, weights="imagenet", advanced={"batch-size": 16, "tensorboard": False})
    path = save_settings(chosen)
    assert path == tmp_path / "runs" / "r1" / "train-settings.json"
    loaded = load_settings(chosen.run_dir)
    assert loaded == chosen and train_argv(LAUNCHER, loaded) == train_argv(LAUNCHER, chosen)
    path.write_text(json.dumps({"data_dir": "d", "run_dir": "r", "advanced": [1], "extra": 1}))
    with pytest.raises(ValueError):
        load_settings(chosen.run_dir)
    path.write_text(json.dumps({"data_dir": "d", "run_dir": "r", "extra": 1}))
    assert load_settings(chosen.run_dir) == TrainSettings("d", "r")
    path.write_text("[")
    with pytest.raises(ValueError):
        load_settings(chosen.run_dir)


def test_fresh_run_dir_never_names_an_existing_folder(tmp_path: Path):
    today = dt.date(2026, 12, 1)
    data = tmp_path / "pets"
    first = fresh_run_dir(data, "mobilenet_v2", today=today)
    assert first == tmp_path / "pets-runs" / "2026-12-01-mobilenet_v2" and not first.exists()
    first.mkdir(parents=True)
    second = fresh_run_dir(data, "mobilenet_v2", today=today)
    assert second.name == "2026-12-01-mobilenet_v2-2"
    (second.parent / "2026-12-01-mobilenet_v2-2").write_text("a file counts too")
    assert fresh_run_dir(data, "mobilenet_v2", today=today).name == "2026-12-01-mobilenet_v2-3"
    assert fresh_run_dir(data, "../x y", runs_root=tmp_path / "elsewhere", today=today).name == "2026-12-01-x_y"


def test_the_models_table_is_parsed_by_its_columns():
    rows = parse_models_table(MODELS_TABLE)
    assert [(r.name, r.pretrained, r.input) for r in rows] == [
        ("mobilenet_v2", True, "224x224"),
        ("lenet5", False, "32x32"),
    ]
    assert rows[1].columns["multiply-adds"] == "417 k (very fast)"
    assert rows[1].description.startswith("LeNet-5 (LeCun 1998)")
    assert parse_models_table("") == [] and parse_models_table("no table here\n") == []


def test_the_models_json_gives_the_same_rows_as_the_table():
    from_json, from_table = parse_models_json(MODELS_JSON), parse_models_table(MODELS_TABLE)
    assert [(r.name, r.pretrained, r.input, r.description) for r in from_json] == [
        (r.name, r.pretrained, r.input, r.description) for r in from_table
    ]
    assert [r.columns for r in from_json] == [r.columns for r in from_table]  # the tab shows the same text
    lenet = from_json[1]
    assert (lenet.default_weights, lenet.input_size, lenet.parameters, lenet.multiply_adds) == (
        "none",
        32,
        61706,
        416520,
    )
    assert from_json[0].default_weights == "imagenet"


def test_the_models_json_skips_what_it_cannot_use():
    odd = {"networks": [{"name": "ok", "input_size": True, "parameters": -1}, {"name": "../x"}, "lenet5", {}]}
    [only] = parse_models_json(json.dumps(odd))
    assert (only.name, only.pretrained, only.input_size, only.parameters, only.input) == ("ok", False, None, None, "")
    assert only.columns["parameters"] == "-" and only.columns["multiply-adds"] == "-"
    for text in ("", "[]", '{"networks": {}}', "not json"):
        with pytest.raises(ValueError):
            parse_models_json(text)


def test_list_backbones_runs_the_launcher(tmp_path: Path):
    fake = tmp_path / "fake_cli.py"
    fake.write_text(f"import sys\nassert sys.argv[1:] == ['models', '--json']\nprint({MODELS_JSON!r})\n")
    launcher = Launcher((sys.executable, str(fake)), "fake", THIS_PYTHON)
    assert [b.name for b in list_backbones(launcher, timeout=60)] == ["mobilenet_v2", "lenet5"]
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nprint('Traceback: no module named training', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(RuntimeError, match="no module named training"):
        list_backbones(Launcher((sys.executable, str(broken)), "broken", THIS_PYTHON), timeout=60)
    garbage = tmp_path / "garbage.py"
    garbage.write_text("print('{not json')\n")
    with pytest.raises(RuntimeError, match="no network list"):
        list_backbones(Launcher((sys.executable, str(garbage)), "garbage", THIS_PYTHON), timeout=60)
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(RuntimeError, match="did not answer"):
        list_backbones(Launcher((sys.executable, str(slow)), "slow", THIS_PYTHON), timeout=0.5)


def test_an_older_convnet_train_without_json_gives_its_table(tmp_path: Path):
    older = tmp_path / "older_cli.py"
    older.write_text(
        "import sys\n"
        "if '--json' in sys.argv:\n"
        "    print('convnet-train: error: unrecognized arguments: --json', file=sys.stderr)\n"
        "    sys.exit(2)\n"
        f"print({MODELS_TABLE!r})\n"
    )
    ignoring = tmp_path / "ignoring_cli.py"  # a wrapper that passes no options on
    ignoring.write_text(f"print({MODELS_TABLE!r})\n")
    for script in (older, ignoring):
        backbones = list_backbones(Launcher((sys.executable, str(script)), "older", THIS_PYTHON), timeout=60)
        assert [(b.name, b.pretrained, b.default_weights) for b in backbones] == [
            ("mobilenet_v2", True, "imagenet"),
            ("lenet5", False, "none"),
        ]


def test_the_real_models_command_parses():
    """`convnet-train models` imports no TensorFlow, so the real listing is checked here:
    --json and the table an older app would read describe the networks alike."""
    python = ROOT / ".venv" / "bin" / "python"
    if not python.is_file():
        pytest.skip("no project .venv")
    done, table = (
        subprocess.run(
            [str(python), "-m", "training.cli", "models", *options],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        for options in (["--json"], [])
    )
    if done.returncode != 0:
        pytest.skip(f"convnet-train models failed here: {done.stderr[-300:]}")
    rows = {row.name: row for row in parse_models_json(done.stdout)}
    assert rows["mobilenet_v2"].pretrained and not rows["lenet5"].pretrained
    assert (rows["lenet5"].input, rows["lenet5"].input_size, rows["lenet5"].default_weights) == ("32x32", 32, "none")
    assert rows["mobilenet_v2"].parameters and rows["mobilenet_v2"].multiply_adds
    assert [row.columns for row in rows.values()] == [row.columns for row in parse_models_table(table.stdout)]
    assert textwrap.shorten(rows["lenet5"].input, 20) == "32x32"
