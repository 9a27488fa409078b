"""Names and text going out: terminal lines, CSV cells and JSON/log records with hostile names.

File names and class names come from strangers. Printed, they must not act on the
terminal or split a line; in a CSV they must not split a row or run as a spreadsheet
formula; a name that is not valid UTF-8 costs at most its own row, never the run.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
from pathlib import Path

import cv2
import onnx_factory
import pytest

from desktop import undo_sort_cli
from desktop.classify_cli import main
from desktop.core import sorting
from desktop.core.batch import BatchResult
from desktop.core.exporters import EXPORTERS, ExportContext, exporter
from desktop.core.results_io import BatchState
from desktop.core.sorting import sort_into_folders

TITLE = "\x1b]0;owned\x07"  # retitles a terminal
COLOUR = "\x1b[31m"  # colours what follows
RLO = "\u202e"  # reverses what follows
# What a spreadsheet may run as a formula (OWASP, "CSV Injection"): no cell may start so.
OWASP_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NOT_UTF8 = os.fsdecode(b"bytes-\xff\xfe")  # a Latin-1 name on a UTF-8 system


def _png(colour: tuple[int, int, int]) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(onnx_factory.solid_image(colour), cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def _write(folder: Path, name: str, data: bytes) -> Path:
    """Write through the bytes of the name, so names that are not UTF-8 are real on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with open(os.fsencode(path), "wb") as handle:
        handle.write(data)
    return path


def _lines_are_clean(err: str) -> list[str]:
    """stderr as lines, each asserted to hold nothing a terminal acts on."""
    lines = err.split("\n")
    assert lines[-1] == ""
    for line in lines[:-1]:
        assert line.isprintable(), repr(line)
    return lines[:-1]


def _unquote(cell: str) -> str:
    """Undo the neutralising quote the CSV writer adds (see desktop.core.results_io)."""
    return cell[1:] if cell.startswith("'") else cell


# --- the terminal -------------------------------------------------------------------------------


def test_classify_stderr_lines_show_names_escaped(colour_model: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """Failure lines, "could not sort" lines and the summary naming the model stay one clean line each."""
    folder = tmp_path / "in"
    good = [f"red{TITLE}.png", "two\nlines.png", f"{RLO}gnp.png"]
    bad = [f"empty{COLOUR}.jpg", "empty\rcr.jpg", f"{NOT_UTF8}.jpg"]
    for name in good:
        _write(folder, name, _png((255, 0, 0)))
    for name in bad:
        _write(folder, name, b"")
    model = tmp_path / f"model{TITLE}.onnx"
    shutil.copy(colour_model, model)

    def refuse(src: Path, tmp: Path) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(sorting, "_copy_to_temp", refuse)
    code = main(
        [
            str(folder),
            "--model",
            str(model),
            "--provider",
            "cpu",
            "--csv",
            str(tmp_path / "o.csv"),
            "--sort-into",
            str(tmp_path / "sorted"),
        ]
    )
    lines = _lines_are_clean(capsys.readouterr().err)
    assert code == 1
    # one line per unreadable file, per unsortable file, the sort summary and the run summary
    assert len(lines) == len(bad) + len(good) + 2
    assert sum("could not sort" in line for line in lines) == len(good)
    assert any("classified 3 images, 3 failed" in line and "model model" in line for line in lines)


@pytest.mark.parametrize("command", [main, undo_sort_cli.main])
def test_usage_errors_quote_what_they_refused_escaped(command, capsys) -> None:
    """argparse repeats a refused argument: that too is one clean line."""
    with pytest.raises(SystemExit) as caught:
        command(["x", f"--bad{TITLE}", f"-\n{COLOUR}"])
    assert caught.value.code == 2
    lines = _lines_are_clean(capsys.readouterr().err)
    assert "unrecognized arguments" in lines[-1]


def test_model_error_naming_a_hostile_file_is_one_clean_line(tmp_path: Path, capsys) -> None:
    model = tmp_path / f"bad{COLOUR}\nmodel.onnx"
    model.write_text("not a model")
    image = _write(tmp_path, "x.png", _png((0, 0, 255)))
    assert main([str(image), "--model", str(model)]) == 2
    assert len(_lines_are_clean(capsys.readouterr().err)) == 1


class _Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_csv_on_a_terminal_shows_names_escaped(colour_model: Path, tmp_path: Path, monkeypatch) -> None:
    """On a terminal the CSV rows are shown like `ls` shows odd names; piped, they stay exact."""
    names = [f"red{TITLE}.png", "two\nlines.png", f"{RLO}gnp.png"]
    paths = [str(_write(tmp_path, name, _png((255, 0, 0)))) for name in names]
    for stdout in (_Terminal(), io.StringIO()):
        monkeypatch.setattr("sys.stdout", stdout)
        assert main(["--model", str(colour_model), "--provider", "cpu", *paths]) == 0
        text = stdout.getvalue()
        if stdout.isatty():
            assert len(_lines_are_clean(text)) == len(names) + 1
        else:
            assert sorted(row[0] for row in list(csv.reader(io.StringIO(text)))[1:]) == sorted(paths)


def test_undo_sort_lines_show_names_escaped(tmp_path: Path, capsys) -> None:
    names = [f"a{TITLE}.jpg", "b\nc.jpg", f"{RLO}d.jpg", f"{NOT_UTF8}.jpg"]
    sources = [_write(tmp_path / "src", name, name.encode("utf-8", "surrogateescape")) for name in names]
    dest = tmp_path / "dest"
    report = sort_into_folders([BatchResult(p, "red", 0.9, (("red", 0.9),)) for p in sources], dest, move=True)
    assert len(report.placed) == len(names) and not report.failed
    for _, placed in report.placed:
        os.unlink(os.fsencode(placed))  # gone: undo reports each one
    assert undo_sort_cli.main([str(dest)]) == 1
    assert len(_lines_are_clean(capsys.readouterr().err)) == len(names) + 1


# --- CSV ----------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "cr\rname.png",
    "lf\nname.png",
    '=HYPERLINK("example.com","open").png',
    "+1.png",
    "-dash.png",
    "@SUM(A1).png",
    "\tstart.png",
    "'quoted.png",
    "plain, comma.png",
    'say "hi".png',
]
FORMULA_LABELS = ["=1+2", "@SUM(1)", "-2+3"]


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:  # newline="": the reader sees every \r
        return handle.read()


def _check_csv(text: str, expected_paths: list[str], label_pool: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == len(expected_paths) + 1  # the header and one row per file
    body = rows[1:]
    assert sorted(_unquote(row[0]) for row in body) == sorted(expected_paths)
    for row in body:
        assert not any(cell.startswith(OWASP_FORMULA_STARTS) for cell in row), row
        assert _unquote(row[1]) in label_pool


@pytest.mark.parametrize("where", ["stdout", "file"])
def test_cli_csv_keeps_one_row_per_file_and_runs_no_formula(
    where: str, tmp_path: Path, models_dir: Path, capsys, monkeypatch
) -> None:
    model = onnx_factory.save_model(models_dir / f"formula-{where}.onnx", labels=FORMULA_LABELS)
    for name in HOSTILE_NAMES:
        _write(tmp_path, name, _png((255, 0, 0)))
    monkeypatch.chdir(tmp_path)  # relative names: the path cell begins with the name itself
    out_csv = tmp_path / "out" / "results.csv"
    extra = ["--csv", str(out_csv)] if where == "file" else []
    assert main(["--model", str(model), "--provider", "cpu", *extra, "--", *HOSTILE_NAMES]) == 0
    text = _read(out_csv) if where == "file" else capsys.readouterr().out
    _check_csv(text, HOSTILE_NAMES, FORMULA_LABELS)


def test_batch_tab_csv_export_is_quoted_and_neutralised(tmp_path: Path) -> None:
    results = [
        BatchResult(Path(name), label, 0.5, ((label, 0.5),))
        for name, label in zip(HOSTILE_NAMES, FORMULA_LABELS * len(HOSTILE_NAMES))
    ]
    target = tmp_path / "export.csv"
    exporter("csv").write(target, results, ExportContext())
    _check_csv(_read(target), HOSTILE_NAMES, FORMULA_LABELS)


# --- names that are not UTF-8 -------------------------------------------------------------------


def test_json_keeps_a_non_utf8_name_and_every_other_row(colour_model: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    names = [f"{NOT_UTF8}.png", "red.png", "blue.png"]
    for name in names:
        _write(folder, name, _png((255, 0, 0)))
    out_json = tmp_path / "results.json"
    assert main([str(folder), "--model", str(colour_model), "--provider", "cpu", "--json", str(out_json)]) == 0
    document = json.loads(out_json.read_bytes().decode("utf-8"))  # strict: valid UTF-8
    assert document["count"] == len(names)
    exact = {}
    for item in document["results"]:
        if "path_base64" in item:
            exact[os.fsdecode(base64.b64decode(item["path_base64"]))] = item
        else:
            exact[item["path"]] = item
    assert set(exact) == {str(folder / name) for name in names}
    bad = exact[str(folder / names[0])]
    assert bad["path"] == os.fsencode(folder / names[0]).decode("utf-8", "replace") and bad["label"] == "red"


def test_batch_tab_exports_and_resume_state_keep_a_non_utf8_name(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    path = _write(folder, f"{NOT_UTF8}.png", _png((255, 0, 0)))
    result = BatchResult(path, "red", 0.9, (("red", 0.9),))
    for format_ in EXPORTERS:
        target = tmp_path / f"export.{format_.kind}"
        format_.write(target, [result], ExportContext(model=str(tmp_path / "m.onnx")))
        assert target.stat().st_size > 0
    assert os.fsencode(path) in (tmp_path / "export.csv").read_bytes()
    state = BatchState.load(tmp_path / "state", folder, tmp_path / "m.onnx")
    state.add([result])
    state.save()
    again = BatchState.load(tmp_path / "state", folder, tmp_path / "m.onnx")
    assert [r.path for r in again.finished.values()] == [path]


def test_sort_and_undo_with_a_non_utf8_name_place_every_file(colour_model: Path, tmp_path: Path, capsys) -> None:
    """All 21 files are moved (the odd name too), the undo hint is printed, undo brings all back."""
    folder = tmp_path / "in"
    names = [f"{i:02d}.png" for i in range(20)] + [f"{NOT_UTF8}.png"]
    for name in names:
        _write(folder, name, _png((0, 0, 255)))
    before = sorted(os.listdir(os.fsencode(folder)))
    dest = tmp_path / "sorted"
    code = main(
        [
            str(folder),
            "--model",
            str(colour_model),
            "--provider",
            "cpu",
            "--json",
            str(tmp_path / "r.json"),
            "--sort-into",
            str(dest),
            "--move",
        ]
    )
    lines = _lines_are_clean(capsys.readouterr().err)
    assert code == 0
    assert any(f"moved {len(names)} images" in line and "convnet-undo-sort" in line for line in lines)
    assert os.listdir(os.fsencode(folder)) == []
    assert undo_sort_cli.main([str(dest)]) == 0
    assert sorted(os.listdir(os.fsencode(folder))) == before
