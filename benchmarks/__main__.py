"""python -m benchmarks: run the benchmark suite; write benchmarks.md and benchmarks.json.

    python -m benchmarks                          every section; rewrites docs/benchmarks.{md,json}
    python -m benchmarks --only single,startup    some sections; the rest keep their last numbers
    python -m benchmarks --quick --out-dir DIR    tiny sizes, a smoke run (what the tests do)

Sections: single (one image), folder (a folder of photos), startup (start-up and memory),
training (feature cache and the three ways), gpu (ONNX Runtime on CUDA, when usable), gpu_training
(TensorFlow's training steps on a GPU, when it sees one), ways (what each pipeline choice buys), ray
(a Ray cluster on this machine, with the cluster extra). `./run-benchmarks.sh` creates the
environment first and passes its arguments here.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import folder, gpu, gpu_training, ray_scaling, single_image, startup, training_speed, ways
from benchmarks.common import CACHE_DIR, ROOT, ensure_jpeg_folder, ensure_mobilenet_model, jpeg_files, machine_info
from benchmarks.report import Section, render_document, render_summary
from convnet_common.atomic import write_text_atomic

MODULES = {
    "single": single_image,
    "folder": folder,
    "startup": startup,
    "training": training_speed,
    "gpu": gpu,
    "gpu_training": gpu_training,
    "ways": ways,
    "ray": ray_scaling,
}
HOW_TO_RERUN = """\
```bash
./run-benchmarks.sh                        # every section (about 4 minutes on 2 cores); rewrites this file
./run-benchmarks.sh --only single,startup  # some sections; the others keep their last numbers (same machine)
./run-benchmarks.sh --quick --out-dir DIR  # tiny sizes: checks the suite runs, measures nothing useful
```

Sections: `single`, `folder`, `startup`, `training`, `gpu`, `gpu_training`, `ways`, `ray`. The script creates `.venv` if
needed (as `./run-tests.sh` does) and runs `python -m benchmarks`. Generated images and
the exported MobileNetV2 (random weights) are cached in `benchmarks/.cache/` (the first
run spends about a minute more making them; delete the folder to rebuild them).
`--render-only` rewrites this file from `benchmarks.json` without measuring. This file
came from `{command}`."""


@dataclass(frozen=True)
class Sizes:
    """How much each section measures; the quick sizes only prove the suite runs."""

    folder_images: int = 1000
    single_rounds: int = 5
    single_runs_per_round: int = 10
    folder_rounds: int = 3
    ceiling_images: int = 256
    decode_files: int = 100
    startup_runs: int = 5
    memory_images: int = 10_000
    memory_width: int = 320
    memory_height: int = 240
    memory_every: int = 1000
    train_images: int = 512
    train_size: int = 160
    train_epochs: int = 3
    gpu_min_seconds: float = 1.0
    gpu_train_size: int = 224
    gpu_train_batch: int = 64
    gpu_train_steps: int = 20
    ways_images: int = 400
    ways_rounds: int = 2
    ways_inference_runs: int = 40
    ray_images: int = 2000
    ray_rounds: int = 3


FULL = Sizes()
QUICK = Sizes(
    folder_images=40,
    single_rounds=2,
    single_runs_per_round=3,
    folder_rounds=1,
    ceiling_images=16,
    decode_files=10,
    startup_runs=2,
    memory_images=300,
    memory_width=160,
    memory_height=120,
    memory_every=100,
    train_images=64,
    train_size=96,
    train_epochs=1,
    gpu_min_seconds=0.2,
    gpu_train_size=96,
    gpu_train_batch=8,
    gpu_train_steps=2,
    ways_images=24,
    ways_rounds=1,
    ways_inference_runs=3,
    ray_images=40,
    ray_rounds=1,
)


class Skipped(Exception):
    """A section that cannot or should not run here; the message says why."""


@dataclass
class Context:
    """What every section needs: sizes, the model (built on first use), what to skip."""

    sizes: Sizes
    given_model: Path | None
    skip_keras: str | None  # why the Keras comparisons are not run, or None
    skip_tensorflow: str | None  # why nothing using TensorFlow runs (--skip-keras), or None
    log: Callable[[str], None]
    built_model: Path | None = None
    model_error: str | None = None

    @property
    def model(self) -> Path:
        """--model, else the cached MobileNetV2 export (made now if missing: only the training
        section can run without it). A failed export is tried once, not once per section."""
        if self.model_error is not None:
            raise RuntimeError(self.model_error)
        if self.built_model is None:
            try:
                self.built_model = (self.given_model or ensure_mobilenet_model(self.log)).resolve()
            except Exception as error:
                self.model_error = f"the benchmark model could not be built: {error}"
                raise
        return self.built_model


def run_single(ctx: Context) -> dict[str, Any]:
    jpeg = jpeg_files(ensure_jpeg_folder(ctx.sizes.folder_images))[0]
    return single_image.measure(
        ctx.model, jpeg, ctx.sizes.single_rounds, ctx.sizes.single_runs_per_round, ctx.skip_keras
    )


def run_folder(ctx: Context) -> dict[str, Any]:
    photos = ensure_jpeg_folder(ctx.sizes.folder_images)
    return folder.measure(
        ctx.model, photos, ctx.sizes.folder_rounds, ctx.sizes.ceiling_images, ctx.sizes.decode_files, ctx.skip_keras
    )


def run_startup(ctx: Context) -> dict[str, Any]:
    s = ctx.sizes
    photos = ensure_jpeg_folder(s.memory_images, s.memory_width, s.memory_height)
    return startup.measure(ctx.model, s.startup_runs, photos, s.memory_every, (s.memory_height, s.memory_width))


def run_training(ctx: Context) -> dict[str, Any]:
    if ctx.skip_tensorflow:
        raise Skipped(ctx.skip_tensorflow)
    return training_speed.measure(ctx.sizes.train_images, ctx.sizes.train_size, ctx.sizes.train_epochs)


def run_gpu(ctx: Context) -> dict[str, Any]:
    status = gpu.cuda_status(ctx.model)
    if not status["usable"]:
        raise Skipped(
            f"no usable CUDA device on this machine ({status['reason']}); ONNX Runtime lists "
            f"{', '.join(status['providers_listed'])}"
        )
    result = gpu.measure(ctx.model, min_seconds=ctx.sizes.gpu_min_seconds)
    result.update(gpu_description=gpu.gpu_description(), cuda_status=status)
    return result


def run_gpu_training(ctx: Context) -> dict[str, Any]:
    if ctx.skip_tensorflow:
        raise Skipped(ctx.skip_tensorflow)
    s = ctx.sizes
    try:
        return gpu_training.measure(s.gpu_train_size, s.gpu_train_batch, s.gpu_train_steps)
    except gpu_training.NoGpu as reason:
        raise Skipped(str(reason)) from None


def run_ways(ctx: Context) -> dict[str, Any]:
    s = ctx.sizes
    return ways.measure(
        ctx.model, ensure_jpeg_folder(s.folder_images), s.ways_images, s.ways_rounds, s.ways_inference_runs
    )


def run_ray(ctx: Context) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise Skipped("Ray is not installed (pip install 'convnet-studio[cluster]')")
    return ray_scaling.measure(ctx.sizes.ray_images, ctx.sizes.ray_rounds, batch_size=32)


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "single": run_single,
    "folder": run_folder,
    "startup": run_startup,
    "training": run_training,
    "gpu": run_gpu,
    "gpu_training": run_gpu_training,
    "ways": run_ways,
    "ray": run_ray,
}


def clean(value: Any) -> Any:
    """JSON-safe: tuples as lists, NaN and infinities as null (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def run_section(key: str, ctx: Context, log: Callable[[str], None]) -> dict[str, Any]:
    """One section's entry for the JSON: its result, or why it was skipped or failed."""
    started = time.perf_counter()
    log(f"{key}: running ...")
    try:
        entry: dict[str, Any] = {"status": "ran", "result": RUNNERS[key](ctx)}
    except Skipped as reason:
        entry = {"status": "skipped", "reason": str(reason)}
    except Exception as error:
        traceback.print_exc()
        entry = {"status": "failed", "reason": f"{type(error).__name__}: {str(error).strip()[:600]}"}
    entry.update(measured_at=time.strftime("%Y-%m-%d %H:%M %Z"), seconds=time.perf_counter() - started)
    log(
        f"{key}: {entry['status']} in {entry['seconds']:.0f} s" + (f" ({entry['reason']})" if "reason" in entry else "")
    )
    return entry


def earlier_entries(path: Path, machine: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Sections from the last run at `path`, if it was the same kind of run on the same machine."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    same = all(previous.get("machine", {}).get(k) == machine.get(k) for k in ("cpu", "cores", "ram_gb"))
    if not same or previous.get("quick") != quick:
        return {}
    return {
        key: dict(entry, from_earlier_run=True)
        for key, entry in previous.get("sections", {}).items()
        if key in MODULES and entry.get("status") == "ran"
    }


def build_sections(entries: dict[str, Any]) -> list[Section]:
    sections = []
    for key, module in MODULES.items():
        entry = entries.get(key, {"status": "skipped", "reason": "not run (left out with --only)"})
        section = Section(key, module.TITLE, module.METHOD, status=entry["status"], reason=entry.get("reason", ""))
        if entry["status"] == "ran":
            section.rows, section.notes = module.rows(entry["result"])
            if entry.get("from_earlier_run"):
                section.notes.append(f"From an earlier run ({entry['measured_at']}); not rerun this time.")
        sections.append(section)
    return sections


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a benchmark")
    parser.add_argument("--only", metavar="SECTIONS", help=f"comma-separated, from: {', '.join(MODULES)}")
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where benchmarks.md/.json go (default docs/; with --quick, benchmarks/.cache/quick/)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="an ONNX model to use instead of the exported MobileNetV2 "
        "(the Keras comparisons, MobileNetV2 on their side, are then skipped)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite benchmarks.md from the benchmarks.json in --out-dir; measure nothing",
    )
    parser.add_argument(
        "--skip-keras",
        action="store_true",
        help="skip everything that runs TensorFlow (Keras comparisons, training section)",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in (args.only or ",".join(MODULES)).split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODULES))
    if unknown or not names:
        parser.error(
            f"--only: unknown section(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODULES)}"
        )
    args.sections = [key for key in MODULES if key in names]
    if args.model is not None and not args.model.is_file():
        parser.error(f"--model: no such file: {args.model}")
    args.out_dir = args.out_dir or (CACHE_DIR / "quick" if args.quick else ROOT / "docs")
    return args


def render_only(out_dir: Path) -> int:
    """Rewrite benchmarks.md from benchmarks.json, e.g. after a change to the report's layout."""
    document = json.loads((out_dir / "benchmarks.json").read_text(encoding="utf-8"))
    sections = build_sections(document["sections"])
    write_text_atomic(
        out_dir / "benchmarks.md",
        render_document(
            document["machine"], sections, HOW_TO_RERUN.format(command=document["command"].strip()), document["quick"]
        ),
    )
    print(render_summary(sections))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        return render_only(args.out_dir)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])

    def log(message: str) -> None:
        print(f"[benchmarks] {message}", file=sys.stderr, flush=True)

    machine = machine_info()
    skip_tensorflow = "--skip-keras given" if args.skip_keras else None
    skip_keras = skip_tensorflow or (
        "--model given; the Keras side is MobileNetV2, so a ratio against another network would mean nothing"
        if args.model
        else None
    )
    ctx = Context(QUICK if args.quick else FULL, args.model, skip_keras, skip_tensorflow, log)

    json_path, md_path = args.out_dir / "benchmarks.json", args.out_dir / "benchmarks.md"
    entries = earlier_entries(json_path, machine, args.quick) if len(args.sections) < len(MODULES) else {}
    for key in args.sections:
        entries[key] = run_section(key, ctx, log)
    document = {
        "generated": machine["date"],
        "command": command,
        "quick": args.quick,
        "machine": machine,
        "model": ctx.built_model.name if ctx.built_model else None,
        "sizes": asdict(ctx.sizes),
        "sections": {key: entries[key] for key in MODULES if key in entries},
    }
    sections = build_sections(entries)
    write_text_atomic(json_path, json.dumps(clean(document), indent=2, allow_nan=False) + "\n")
    write_text_atomic(md_path, render_document(machine, sections, HOW_TO_RERUN.format(command=command), args.quick))
    print(render_summary(sections))
    log(f"wrote {md_path} and {json_path}")
    failed = [key for key in args.sections if entries[key]["status"] == "failed"]
    if failed:
        log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
