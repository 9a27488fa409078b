"""What a newcomer sees from `convnet-train` before any training: its help, a quick model
listing, and no TensorFlow CUDA noise on machines without an NVIDIA GPU.

The real console script runs in a subprocess, as a user starts it, so the process's own
stderr (where TensorFlow's C++ code writes) is what gets checked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import cli, tf_runtime
from training.networks import NETWORKS

# Lines TensorFlow writes when it looks for CUDA: Abseil's pre-initialisation warning and
# any line in Abseil's "I0000 00:00:... file.cc:NN]" format (cuInit failures are E0000).
NOISE = re.compile(r"absl::InitializeLog|cuInit|cuda drivers|^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)
NO_GPU = not tf_runtime.nvidia_gpu_possible()


def convnet_train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed console script (the one next to this Python), as a user would."""
    script = Path(sys.executable).with_name("convnet-train")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "training.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}  # as a user's shell has it
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, env=env)


# --------------------------------------------------------------------------- help


def test_help_describes_the_tool_not_its_source():
    result = convnet_train("--help")
    assert result.returncode == 0
    text = result.stdout
    assert cli.__doc__.strip().splitlines()[0] not in text, "the module docstring is for developers"
    assert "argument parsing" not in text
    subcommands = cli.build_parser()._subparsers._group_actions[0].choices
    for name in subcommands:
        assert re.search(rf"^\s+{re.escape(name)}\s", text, re.MULTILINE), f"{name} is not listed"
    examples = [line for line in text.splitlines() if line.strip().startswith("convnet-train ")]
    assert {line.split()[1] for line in examples} >= {"models", "train", "evaluate", "export"}


@pytest.mark.parametrize("name", list(cli.build_parser()._subparsers._group_actions[0].choices))
def test_every_subcommand_explains_itself_and_every_option(name):
    parser = cli.build_parser()._subparsers._group_actions[0].choices[name]
    assert parser.description and len(parser.description.split()) >= 8, f"{name} has no real description"
    unexplained = [
        action.option_strings[0] if action.option_strings else action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert not unexplained, f"`convnet-train {name} --help` leaves these unexplained: {unexplained}"
    assert parser.format_help().count("\n") > 5


# --------------------------------------------------------------------------- models


def test_models_lists_every_network_without_importing_tensorflow():
    probe = (
        "import sys\n"
        "from training import cli\n"
        "status = cli.main(['models'])\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx', 'onnxruntime') if m in sys.modules)\n"
        "print('HEAVY', ','.join(heavy), 'STATUS', status)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY  STATUS 0"
    for info in NETWORKS.values():
        assert f"{info.parameters:,}" in result.stdout, info.name


def test_evaluating_an_onnx_file_needs_no_tensorflow(tmp_path):
    """ONNX Runtime scores an exported model; importing TensorFlow would only cost seconds."""
    model = Path(__file__).resolve().parents[2] / "exported_models" / "digits-lenet5.onnx"
    for label in ("3", "7"):
        (tmp_path / "data" / label).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / label / "a.png"), np.full((8, 8), 30 * int(label), np.uint8))
    probe = (
        "import sys\n"
        "from training import cli\n"
        f"status = cli.main(['evaluate', {str(model)!r}, {str(tmp_path / 'data')!r}, '--report', "
        f"{str(tmp_path / 'report')!r}])\n"
        "print('TENSORFLOW', 'tensorflow' in sys.modules, 'STATUS', status)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "TENSORFLOW False STATUS 0", result.stderr
    assert not NOISE.findall(result.stderr), result.stderr
    assert (tmp_path / "report" / "metrics.json").is_file()


def test_models_through_the_console_script_is_clean():
    result = convnet_train("models")
    assert result.returncode == 0
    assert result.stderr == ""
    listed = {line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip()}
    assert set(NETWORKS) <= listed
    no_params = convnet_train("models", "--no-params")
    assert no_params.returncode == 0 and f"{NETWORKS['vgg16'].parameters:,}" not in no_params.stdout


def test_models_json_is_one_document_for_programs_without_tensorflow(capsys):
    """`models --json` is what the Train tab reads instead of the table's columns: the
    same facts as the table, every network, nothing else on stdout, no TensorFlow."""
    from training.networks.info import speed_hint

    probe = (
        "import sys\n"
        "from training import cli\n"
        "status = cli.main(['models', '--json'])\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx', 'onnxruntime') if m in sys.modules)\n"
        "print('HEAVY', ','.join(heavy), 'STATUS', status, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.stderr.strip().splitlines()[-1] == "HEAVY  STATUS 0", result.stderr
    assert result.stdout.isascii()
    document = json.loads(result.stdout)
    assert document["version"] == 1
    assert [entry["name"] for entry in document["networks"]] == list(NETWORKS)
    for entry in document["networks"]:
        info = NETWORKS[entry["name"]]
        assert entry == {
            "name": info.name,
            "family": info.family,
            "imagenet_weights": info.pretrained,
            "default_weights": info.default_weights,
            "input_size": info.default_image_size,
            "min_input_size": info.min_image_size,
            "top_classes": info.top_classes,
            "parameters": info.parameters,
            "multiply_adds": info.multiply_adds,
            "speed": speed_hint(info.multiply_adds),
            "description": info.summary,
        }
    assert cli.main(["models", "--json", "--no-params"]) == 0
    bare = json.loads(capsys.readouterr().out)["networks"]
    assert all(e["parameters"] is None and e["multiply_adds"] is None and e["speed"] is None for e in bare)
    assert [e["default_weights"] for e in bare] == [e["default_weights"] for e in document["networks"]]


# --------------------------------------------------------------------------- CUDA noise


def test_filter_drops_only_the_no_cuda_lines():
    noise = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796091053.566898    5462 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        b"GPU will not be used.\n",
        b"E0000 00:00:1796091058.244139    5462 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
        b"Failed call to cuInit: UNKNOWN ERROR (303)\n",
    ]
    kept = [
        b"E0000 00:00:1796091058.244139    5462 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n",
        b"/path/keras/src/trainers/epoch_iterator.py:164: UserWarning: Your input ran out of data\n",
        b"2 classes, 10 training and 2 validation images (0 skipped)\n",
    ]
    mixed = b"".join(line for pair in zip(noise, kept) for line in pair)
    assert tf_runtime.filter_cuda_noise(mixed) == b"".join(kept)


def test_gpu_detection_needs_a_device_node_and_the_driver(tmp_path, monkeypatch):
    assert not tf_runtime.nvidia_gpu_possible(tmp_path)
    (tmp_path / "nvidia0").touch()
    monkeypatch.setattr(tf_runtime.ctypes, "CDLL", lambda name: (_ for _ in ()).throw(OSError(name)))
    assert not tf_runtime.nvidia_gpu_possible(tmp_path), "a device node without libcuda cannot run CUDA"
    monkeypatch.setattr(tf_runtime.ctypes, "CDLL", lambda name: object())
    assert tf_runtime.nvidia_gpu_possible(tmp_path)


@pytest.mark.skipif(not NO_GPU, reason="an NVIDIA GPU may be usable here: TensorFlow's CUDA messages are real news")
def test_summary_prints_no_cuda_noise_without_a_gpu():
    result = convnet_train("summary", "lenet5")
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout
    assert not NOISE.findall(result.stderr), result.stderr


@pytest.mark.skipif(not NO_GPU, reason="an NVIDIA GPU may be usable here: TensorFlow's CUDA messages are real news")
def test_train_prints_no_cuda_noise_without_a_gpu(tmp_path):
    """A tiny real run; without --weights, a from-scratch network starts from random weights."""
    for label, value in (("dark", 30), ("light", 220)):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(5):
            cv2.imwrite(str(tmp_path / "data" / label / f"{i}.png"), np.full((12, 12, 3), value + i, np.uint8))
    result = convnet_train(
        "train",
        str(tmp_path / "data"),
        "--backbone",
        "lenet5",
        "--epochs",
        "1",
        "--augment",
        "none",
        "--no-tensorboard",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "best.keras").is_file()
    assert not NOISE.findall(result.stderr), result.stderr
    assert "2 classes" in result.stderr  # the run's own progress still reaches stderr
