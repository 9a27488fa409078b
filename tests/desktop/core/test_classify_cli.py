"""convnet-classify end to end: CSV shape, error rows, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import onnx_factory
import pytest
from test_batch_engine import make_folder

from desktop import undo_sort_cli
from desktop.classify_cli import main
from desktop.core.results_io import CSV_COLUMNS

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def image_folder(tmp_path: Path, write_png) -> Path:
    return make_folder(tmp_path / "images", write_png)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_folder_with_good_and_broken_files(colour_model: Path, image_folder: Path, capsys) -> None:
    code = main([str(image_folder), "--model", str(colour_model), "--provider", "cpu", "--batch-size", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines()[0] == "path,label,confidence,top_k,error,unknown,unknown_score"
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert set(rows) == {"red.png", "green.png", "blue.png", "empty.jpg", "text.jpg", "truncated.png"}
    assert rows["red.png"]["label"] == "red"
    assert rows["green.png"]["label"] == "green"
    assert rows["blue.png"]["label"] == "blue"
    good = rows["red.png"]
    assert good["error"] == "" and len(good["confidence"].split(".")[1]) == 4
    top_k = json.loads(good["top_k"])
    assert top_k[0][0] == "red" and len(top_k) == 3
    assert all(round(p, 4) == p for _, p in top_k)
    for broken in ("empty.jpg", "text.jpg", "truncated.png"):
        assert rows[broken]["error"], broken
        assert rows[broken]["label"] == rows[broken]["confidence"] == rows[broken]["top_k"] == ""
    assert "classified 3 images, 3 failed" in err
    assert "provider CPUExecutionProvider" in err and "colours.onnx" in err


def test_csv_file_is_written_and_exit_zero(colour_model: Path, tmp_path: Path, write_png, capsys) -> None:
    image = write_png("one.png", onnx_factory.solid_image((0, 0, 255)))
    out_csv = tmp_path / "out" / "results.csv"
    code = main([str(image), "--model", str(colour_model), "--csv", str(out_csv), "--top-k", "2"])
    out, err = capsys.readouterr()
    assert code == 0 and out == ""
    text = out_csv.read_text()
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    (row,) = _rows(text)
    assert row["label"] == "blue" and len(json.loads(row["top_k"])) == 2
    assert "classified 1 images, 0 failed" in err
    assert [p.name for p in out_csv.parent.iterdir()] == ["results.csv"]  # no temp file left


def test_bad_model_exits_2_with_one_line(tmp_path: Path, write_png, capsys) -> None:
    image = write_png("x.png", onnx_factory.solid_image((0, 0, 255)))
    bad = tmp_path / "bad.onnx"
    bad.write_text("nope")
    assert main([str(image), "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convnet-classify: error: bad.onnx could not be opened") and err.count("\n") == 1


def test_usage_error_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--top-k", "0", "x.png"])
    assert caught.value.code == 2


def test_no_metadata_model_notes_it(plain_model: Path, tmp_path: Path, write_png, capsys) -> None:
    image = write_png("g.png", onnx_factory.solid_image((0, 255, 0)))
    assert main([str(image), "--model", str(plain_model), "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert _rows(out)[0]["label"] == "class 1"
    assert "no ConvNet Studio metadata" in err


def test_runs_as_a_module_without_traceback(colour_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "desktop.classify_cli", str(tmp_path / "missing.png"), "--model", str(colour_model)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 1
    assert "file not found" in result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("classified 0 images, 1 failed")


def test_json_output_and_quiet_stdout(colour_model: Path, image_folder: Path, tmp_path: Path, capsys) -> None:
    out_json = tmp_path / "out.json"
    code = main([str(image_folder), "--model", str(colour_model), "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    document = json.loads(out_json.read_text())
    assert document["count"] == 6 and document["failed"] == 3 and document["model"].endswith("colours.onnx")
    by_name = {Path(r["path"]).name: r for r in document["results"]}
    assert by_name["green.png"]["label"] == "green" and by_name["green.png"]["error"] is None
    assert by_name["empty.jpg"]["label"] is None and by_name["empty.jpg"]["error"]


def test_sort_into_with_move_and_threshold(colour_model: Path, image_folder: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "sorted"
    before = sorted(image_folder.rglob("*"))
    code = main(
        [
            str(image_folder),
            "--model",
            str(colour_model),
            "--sort-into",
            str(dest),
            "--move",
            "--threshold",
            "1",
            "--csv",
            str(tmp_path / "r.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1  # three files could not be read
    assert sorted(p.name for p in (dest / "_unsure").iterdir()) == ["blue.png", "green.png", "red.png"]
    assert not (image_folder / "red.png").exists() and (image_folder / "empty.jpg").exists()
    assert "moved 3 images into" in err and len(list(dest.glob("sort-log-*.jsonl"))) == 1
    assert len(_rows((tmp_path / "r.csv").read_text())) == 6
    hint = err.split("(undo: ")[1].split(")")[0]  # the command that undoes it, as printed
    assert hint == f"convnet-undo-sort {dest}"
    assert undo_sort_cli.main([hint.split(" ", 1)[1]]) == 0
    assert sorted(image_folder.rglob("*")) == before and not list((dest / "_unsure").iterdir())


def test_sort_into_copies_by_class(colour_model: Path, tmp_path: Path, write_png, capsys) -> None:
    image = write_png("one.png", onnx_factory.solid_image((0, 0, 255)))
    assert main([str(image), "--model", str(colour_model), "--sort-into", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "blue" / "one.png").exists() and image.exists()
    assert _rows(capsys.readouterr().out)[0]["label"] == "blue"  # CSV still on stdout


@pytest.mark.parametrize("extra", [["--move"], ["--threshold", "0.5"], ["--sort-into", "d", "--threshold", "2"]])
def test_sort_options_usage_errors(extra: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["x.png", *extra])
    assert caught.value.code == 2


def test_a_second_sort_into_a_dest_inside_the_source_says_what_it_left(
    colour_model: Path, tmp_path: Path, capsys
) -> None:
    """Re-running a sort whose DEST sits in the source: the sorted files stay, and the CLI says so."""
    source = tmp_path / "photos"
    source.mkdir()
    for name, colour in (("r.png", (0, 0, 255)), ("b.png", (255, 0, 0))):
        cv2.imwrite(str(source / name), onnx_factory.solid_image(colour)[..., ::-1])
    dest = source / "sorted"
    args = [str(source), "--model", str(colour_model), "--sort-into", str(dest), "--move", "--csv", str(tmp_path / "c")]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "moved 0 images into" in err
    assert "left 2 files already in" in err and "(2 in their class folder, 0 in another)" in err, err
    assert sorted(p.name for p in dest.rglob("*.png")) == ["b.png", "r.png"]
