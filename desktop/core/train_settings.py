"""What the Train tab asks for, and the `convnet-train` command line it becomes.

The tab offers three presets instead of epoch counts, an optional augmentation, and an
"advanced" table of any other `convnet-train train` option; all of it is saved next to
the run (RUN_DIR/train-settings.json) so a run can be repeated or compared later, and
desktop.core.run_history reads the data folder back from it. The option names here are
the CLI's own (`convnet-train train --help`); the app never imports training.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convnet_common.atomic import write_text_atomic
from convnet_common.safe_json import JsonInputError, loads_limited, read_json
from desktop.core.run_history import SETTINGS_FILE
from desktop.core.trainer_launcher import Launcher

PRESETS: dict[str, dict[str, int]] = {
    # epochs / fine_tune_epochs for a pretrained base (two stages), and scratch_epochs for
    # a network trained whole. Early stopping (patience 5) ends a stage that stops improving.
    "quick": {"epochs": 3, "fine_tune_epochs": 2, "scratch_epochs": 8},
    "balanced": {"epochs": 10, "fine_tune_epochs": 5, "scratch_epochs": 20},  # the CLI's defaults
    "best": {"epochs": 25, "fine_tune_epochs": 15, "scratch_epochs": 60},
}
# Options the app sets itself; an advanced entry may not repeat them.
RESERVED_OPTIONS = frozenset(
    {"--out", "--resume", "--config", "--progress", "--help", "--backbone", "--weights", "--augment"}
)
_OPTION = re.compile(r"--[a-z][a-z0-9-]{0,63}")
MAX_SETTINGS_BYTES = 1_000_000
MODELS_TIMEOUT_S = 60.0
MAX_MODELS_JSON_BYTES = 4_000_000  # about 300 bytes a network


@dataclass
class TrainSettings:
    """One run's choices. `weights` None: the network's default; `augment`: none, light,
    seed or a YAML path, None for the CLI's default; `advanced`: option → value, where
    True/False is a --flag/--no-flag and None leaves the option out."""

    data_dir: str
    run_dir: str
    backbone: str = "mobilenet_v2"
    weights: str | None = None
    preset: str = "balanced"
    augment: str | None = None
    advanced: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        """Settings from JSON: unknown keys ignored; a missing folder or wrong type refused."""
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("data_dir"), str)
            or not isinstance(data.get("run_dir"), str)
        ):
            raise ValueError("the settings name no data folder or run folder")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("backbone", "preset"):
            if not isinstance(values.get(name, ""), str):
                raise ValueError(f"the settings' {name} is not text")
        for name in ("weights", "augment"):
            if values.get(name) is not None and not isinstance(values[name], str):
                raise ValueError(f"the settings' {name} is not text")
        if not isinstance(values.get("advanced", {}), dict):
            raise ValueError("the settings' advanced options are not a table")
        return cls(**values)


def option_name(key: str) -> str:
    """ "label_smoothing", "label-smoothing" or "--label-smoothing" → "--label-smoothing"."""
    name = "--" + str(key).strip().lstrip("-").replace("_", "-").lower()
    if not _OPTION.fullmatch(name):
        raise ValueError(f"{key!r} is not a convnet-train option name")
    return name


def advanced_args(advanced: dict[str, Any]) -> list[str]:
    """The advanced table as arguments, `--name=value` so a value starting with "-" is not
    read as an option; refuses names the app sets itself and values that are not scalars."""
    args = []
    for key, value in advanced.items():
        name = option_name(key)
        if name in RESERVED_OPTIONS or name.removeprefix("--no-") in {o[2:] for o in RESERVED_OPTIONS}:
            raise ValueError(f"{name} is set by the app, not in the advanced options")
        if value is None:
            continue
        if value is True:
            args.append(name)
        elif value is False:
            args.append("--no-" + name[2:])
        elif isinstance(value, int | float | str):
            text = str(value)
            if "\n" in text or "\0" in text:
                raise ValueError(f"{name}: the value has a line break or NUL")
            args.append(f"{name}={text}")
        else:
            raise ValueError(f"{name}: {type(value).__name__} is not a value a command line can take")
    return args


def preset_epochs(preset: str, pretrained: bool = True) -> dict[str, int]:
    """The preset's `--epochs`/`--fine-tune-epochs` values (no fine-tuning from scratch)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (one of {', '.join(PRESETS)})")
    values = PRESETS[preset]
    if pretrained:
        return {"--epochs": values["epochs"], "--fine-tune-epochs": values["fine_tune_epochs"]}
    return {"--epochs": values["scratch_epochs"]}


def train_argv(launcher: Launcher, settings: TrainSettings, pretrained: bool = True) -> list[str]:
    """The full command line of a new run, ending in `--progress jsonl`.

    `pretrained`: whether the backbone is fine-tuned from pretrained weights (the
    `training` column of `convnet-train models`, and weights not "none"); it decides which
    epoch counts the preset gives. Advanced entries override the preset's counts.
    Paths are made absolute, so neither one can be mistaken for an option.
    """
    pretrained = pretrained and settings.weights != "none"
    advanced = {option_name(k): v for k, v in settings.advanced.items()}
    argv = [*launcher.argv, "train", os.path.abspath(settings.data_dir), "--out", os.path.abspath(settings.run_dir)]
    argv.append(f"--backbone={settings.backbone}")
    if settings.weights:
        weights = settings.weights if settings.weights in ("imagenet", "none") else os.path.abspath(settings.weights)
        argv.append(f"--weights={weights}")
    for name, value in preset_epochs(settings.preset, pretrained).items():
        if name not in advanced:
            argv.append(f"{name}={value}")
    if settings.augment:
        augment = settings.augment
        if augment not in ("none", "light", "seed"):
            augment = os.path.abspath(augment)
        argv.append(f"--augment={augment}")
    argv += advanced_args(advanced)
    return [*argv, "--progress", "jsonl"]


def resume_argv(launcher: Launcher, run_dir: str | os.PathLike[str]) -> list[str]:
    """Continue an interrupted run where its resume point left it."""
    return [*launcher.argv, "train", "--resume", os.path.abspath(run_dir), "--progress", "jsonl"]


def export_argv(
    launcher: Launcher, run_dir: str | os.PathLike[str], out: str | os.PathLike[str], precision: str = "fp32"
) -> list[str]:
    """Export a run as one .onnx file (fp32, fp16 or int8)."""
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"unknown precision {precision!r}")
    return [
        *launcher.argv,
        "export",
        os.path.abspath(run_dir),
        f"--out={os.path.abspath(out)}",
        f"--precision={precision}",
    ]


def fresh_run_dir(
    data_dir: str | os.PathLike[str],
    backbone: str,
    runs_root: str | os.PathLike[str] | None = None,
    today: dt.date | None = None,
) -> Path:
    """A run folder that does not exist yet: RUNS_ROOT/<date>-<backbone>[-N], where
    RUNS_ROOT defaults to <dataset parent>/<dataset>-runs. Nothing is created."""
    data = Path(os.path.abspath(data_dir))
    root = Path(runs_root) if runs_root is not None else data.parent / f"{data.name or 'dataset'}-runs"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone).strip("._") or "run"
    stem = f"{(today or dt.date.today()).isoformat()}-{safe}"
    candidate, number = root / stem, 2
    while os.path.lexists(candidate):
        candidate, number = root / f"{stem}-{number}", number + 1
    return candidate


def settings_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / SETTINGS_FILE


def save_settings(settings: TrainSettings) -> Path:
    """Write the settings into the run folder (created if needed; convnet-train accepts a
    folder with no saved run in it), atomically."""
    path = settings_path(settings.run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(settings.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return path


def load_settings(run_dir: str | os.PathLike[str]) -> TrainSettings:
    """The settings a run was started with; OSError, or ValueError for a bad file."""
    return TrainSettings.from_dict(read_json(settings_path(run_dir), MAX_SETTINGS_BYTES, SETTINGS_FILE))


@dataclass(frozen=True)
class Backbone:
    """One network of `convnet-train models`; `columns` holds its row as the table shows
    it, by heading ("input", "parameters", "multiply-adds", "training", ...), whichever
    of the listing or the table it came from. The numbers come only from the listing."""

    name: str
    pretrained: bool
    input: str
    description: str
    columns: dict[str, str]
    default_weights: str = ""  # what --weights means when not given: "imagenet" or "none"
    input_size: int | None = None
    parameters: int | None = None  # of the network as published (columns["parameters"] says for how many classes)
    multiply_adds: int | None = None  # for one image at input_size: the speed hint


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_models_json(text: str | bytes) -> list[Backbone]:
    """The document `convnet-train models --json` prints ({"version": 1, "networks": [...]}).
    Entries without a usable name are skipped, missing or mistyped fields left empty;
    JsonInputError (a ValueError) when the text is not such a document."""
    document = loads_limited(text, MAX_MODELS_JSON_BYTES, "`convnet-train models --json`")
    networks = document.get("networks") if isinstance(document, dict) else None
    if not isinstance(networks, list):
        raise JsonInputError("`convnet-train models --json` printed no network list")
    backbones = []
    for entry in networks:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            continue
        text_of = {key: value for key, value in entry.items() if isinstance(value, str)}
        pretrained = entry.get("imagenet_weights") is True
        size, smallest = _count(entry.get("input_size")), _count(entry.get("min_input_size"))
        parameters, work, classes = (_count(entry.get(k)) for k in ("parameters", "multiply_adds", "top_classes"))
        # The table's cells, so what the Train tab shows does not depend on where the list came from.
        columns = {
            "name": name,
            "family": text_of.get("family", ""),
            "input": f"{size}x{size}" if size else "",
            "min": "" if smallest is None else str(smallest),
            "parameters": "-" if parameters is None else f"{parameters:,} ({classes or '?'} classes)",
            "multiply-adds": text_of.get("speed", "-"),
            "training": "pretrained" if pretrained else "from scratch",
            "description": text_of.get("description", ""),
        }
        backbones.append(
            Backbone(
                name,
                pretrained,
                columns["input"],
                columns["description"],
                columns,
                default_weights=text_of.get("default_weights", ""),
                input_size=size,
                parameters=parameters,
                multiply_adds=work,
            )
        )
    return backbones


def parse_models_table(text: str) -> list[Backbone]:
    """The table `convnet-train models` prints, read only from a convnet-train older than
    `--json` (list_backbones): a heading line, a line of dashes whose runs give the
    columns, then one row per network up to the first blank line. The last column runs
    to the end of the line. Rows without a name are skipped."""
    lines = text.splitlines()
    rule = next((i for i, line in enumerate(lines) if i and re.fullmatch(r"[- ]*-[- ]*", line.rstrip())), None)
    if rule is None:
        return []
    spans = [m.span() for m in re.finditer(r"-+", lines[rule])]
    heading = lines[rule - 1]
    names = [
        heading[a : (spans[i + 1][0] if i + 1 < len(spans) else None)].strip().lower() for i, (a, _) in enumerate(spans)
    ]
    rows = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        cells = [line[a : (spans[i + 1][0] if i + 1 < len(spans) else None)].strip() for i, (a, _) in enumerate(spans)]
        columns = dict(zip(names, cells))
        name = columns.get("name") or cells[0]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            continue
        training = columns.get("training", "")
        rows.append(
            Backbone(
                name,
                training.startswith("pretrained"),
                columns.get("input", ""),
                columns.get("description", ""),
                columns,
                default_weights="imagenet" if training.startswith("pretrained") else "none",
            )
        )
    return rows


def _run_models(launcher: Launcher, options: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, COLUMNS="400", PYTHONIOENCODING="utf-8")
    try:
        return subprocess.run(
            [*launcher.argv, "models", *options],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`convnet-train models` did not answer within {timeout:.0f} s") from None
    except OSError as error:
        raise RuntimeError(f"could not run convnet-train: {error}") from None


def list_backbones(launcher: Launcher, timeout: float = MODELS_TIMEOUT_S) -> list[Backbone]:
    """The networks `--backbone` accepts, from `convnet-train models --json` (no TensorFlow
    is imported for it, so it is quick). A convnet-train older than --json refuses it
    (exit status 2, usage error naming it) and the table of a plain `models` is read
    instead: the app and the trainer can live in different environments and be updated
    apart.
    Raises RuntimeError with the reason when it fails."""
    done = _run_models(launcher, ["--json"], timeout)
    if done.returncode == 2 and b"--json" in done.stderr:  # argparse: unrecognized arguments
        done = _run_models(launcher, [], timeout)
    text = done.stdout.decode("utf-8", "replace")
    try:
        backbones = parse_models_json(text)
    except JsonInputError:  # a table: from the rerun, or a wrapper that ignored --json
        backbones = parse_models_table(text)
    if done.returncode != 0 or not backbones:
        why = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no network list in its output"])[-1]
        raise RuntimeError(f"`convnet-train models` failed (exit status {done.returncode}): {why[:300]}")
    return backbones
