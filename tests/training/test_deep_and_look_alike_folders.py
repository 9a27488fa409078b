"""The training data scan with folders nested thousands deep, and with class folders whose
names differ only by letter case or Unicode normalisation.

Issue: 1,100 levels crashed `convnet-train` with a RecursionError (os.walk recursed once
per level); the walk is now iterative (convnet_common/folder_walk.py), and a folder whose
path passes PATH_MAX is listed as skipped with its reason. `café` typed on Linux (NFC)
and `café` from macOS (NFD), or `Cat` and `cat`, trained as two classes with labels that
look the same (and are one folder on macOS/Windows): the scan now refuses them by name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from deep_folders import chain_path, make_chain, png_bytes, remove_chain

from training import cli, data

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120  # generous: the scan takes about a second; the old one crashed or grew quadratically
NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")

# The scan in a child process: a crash is a non-zero exit with a traceback, and a
# quadratic walk runs into the timeout, without taking the test process down.
SCAN = """
import json, sys
from training import data
scanned = data.scan_class_folders(sys.argv[1])
print(json.dumps({"classes": scanned.class_names, "samples": [s.path for s in scanned.samples],
                  "skipped": scanned.skipped}))
"""


@pytest.fixture
def dataset(tmp_path: Path):
    root = tmp_path / "data"
    yield root
    for folder in (root / "deep", root / "flat"):
        if folder.exists():
            remove_chain(folder)  # pytest's clean-up recurses, and cannot remove paths past PATH_MAX


def _scan(root: Path) -> dict:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    result = subprocess.run(
        [sys.executable, "-c", SCAN, str(root)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_scan_finds_images_1100_folders_deep(dataset: Path) -> None:
    make_chain(dataset / "deep", 1100, {1100: ["a.png", "b.png", "c.png"]})
    make_chain(dataset / "flat", 0, {0: ["x.png"]})
    found = _scan(dataset)
    inner = chain_path(dataset / "deep", 1100)
    assert found["classes"] == ["deep", "flat"]
    assert found["samples"] == [f"{inner}/a.png", f"{inner}/b.png", f"{inner}/c.png", str(dataset / "flat" / "x.png")]
    assert found["skipped"] == []


def test_scan_lists_the_folder_past_path_max_as_skipped(dataset: Path) -> None:
    make_chain(dataset / "deep", 3000, {1000: ["shallow.png"], 3000: ["lost.png"]})
    make_chain(dataset / "flat", 0, {0: ["x.png"]})
    found = _scan(dataset)
    assert found["samples"] == [f"{chain_path(dataset / 'deep', 1000)}/shallow.png", str(dataset / "flat" / "x.png")]
    [(path, reason)] = found["skipped"]
    assert path.startswith(chain_path(dataset / "deep", 1000)) and len(path.encode()) >= 4096 - 2
    assert "longer than the system allows" in reason and "move the folder higher up" in reason


def _class_folders(root: Path, *names: str) -> None:
    for index, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(3):
            (folder / f"{i}.png").write_bytes(png_bytes(40 + 60 * index + i))


def _train(data_dir: Path, tmp_path: Path) -> int:
    return cli.main(
        [
            "train",
            str(data_dir),
            "--backbone",
            "lenet5",
            "--weights",
            "none",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )


@pytest.mark.parametrize(("first", "second"), [(NFC, NFD), ("Cat", "cat")], ids=["nfc-nfd", "case"])
def test_train_refuses_look_alike_class_folders(tmp_path: Path, capsys, first: str, second: str) -> None:
    root = tmp_path / "data"
    _class_folders(root, first, second, "dog")
    assert sorted(p.name for p in root.iterdir()) == sorted([first, second, "dog"])  # two real folders
    assert _train(root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "differ only by letter case or Unicode normalisation" in err
    assert repr(data._spelled(first)) in err and repr(data._spelled(second)) in err
    assert "rename them, or merge them into one folder" in err
    assert not (tmp_path / "run").exists(), "nothing should be written before training starts"


def test_nfd_folder_gives_an_nfc_label_and_matches_an_nfc_validation_class(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train", NFD, "dog")
    scanned = data.scan_class_folders(tmp_path / "train")
    assert scanned.class_names == [NFC, "dog"]
    _class_folders(tmp_path / "val", NFD, "dog")
    val = data.scan_class_folders(tmp_path / "val", class_names=[NFC, "dog"])
    assert val.counts() == {NFC: 3, "dog": 3}
