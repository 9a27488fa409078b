"""A fake `convnet-train` for the Train tab's tests, and the class folders they train on.

FAKE is a small script: it answers `models` with a table in convnet-train's format and
`train` with schema-1 progress events on stdout (short sleeps between batches), writes
the run folder's files the app reads (history.csv, checkpoints/state.json, result.json),
honours SIGINT with a `stopped` event and exit 130, and with FAKE_DIE set kills itself
after its first epoch (FAKE_REFUSE: a usage error; FAKE_DELAY: seconds per batch). The
`fake_launcher` and `tab` fixtures (tests/desktop/qt/conftest.py) make the Train tab run it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np

FAKE = textwrap.dedent(
    r"""
    import json, os, signal, sys, time
    from pathlib import Path

    WIDTHS = (10, 6, 5, 3, 14, 17, 12, 11)
    ROWS = [
        ("name", "family", "input", "min", "parameters", "multiply-adds", "training", "description"),
        tuple("-" * w for w in WIDTHS),
        ("fakenet", "Fake", "32x32", "8", "1,000", "1 k (very fast)", "from scratch", "a fake network"),
        ("fakepre", "Fake", "64x64", "8", "2,000", "2 k (very fast)", "pretrained", "a pretrained one"),
    ]
    TABLE = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, WIDTHS)).rstrip() for row in ROWS) + "\n\n"

    # as convnet-train does with --progress jsonl (training.cli.stop_on_sigint): Stop works
    # even when the suite runs as a shell's background job, which starts with SIGINT ignored
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def emit(event, **fields):
        print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)

    def option(args, name, default):
        for arg in args:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return default

    args = sys.argv[1:]
    if args[0] == "models":
        print(TABLE)
        sys.exit(0)
    if "--resume" in args:
        run = Path(args[args.index("--resume") + 1])
        state = json.loads((run / "checkpoints" / "state.json").read_text())
        first, total = state["next_epoch"] + 1, state["epochs"]
    else:
        run = Path(option(args, "--out", None) or args[args.index("--out") + 1])
        run.mkdir(parents=True, exist_ok=True)
        first, total = 1, int(option(args, "--epochs", "4"))
        (run / "config.yaml").write_text("backbone: fakenet\n")
        (run / "history.csv").write_text("epoch,stage,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n")
    if os.environ.get("FAKE_REFUSE"):
        emit("error", kind="usage", message="argument --epochs: <b>not</b> a number")
        sys.exit(2)
    delay = float(os.environ.get("FAKE_DELAY", "0.05"))
    print("fake convnet-train: starting", file=sys.stderr, flush=True)
    try:
        emit("start", version=1, command="resume" if first > 1 else "train", run_dir=str(run),
             data_dir="x", backbone="fakenet", epochs=total, stages=1, batch_size=4)
        emit("dataset", classes=["a", "b"], counts={"a": 6, "b": 6}, train=10, validation=2, skipped=[])
        emit("stage", stage=1, stages=1, first_epoch=1, last_epoch=total, learning_rate=0.001, description="whole network")
        for epoch in range(first, total + 1):
            for batch in range(1, 6):
                time.sleep(delay)
                emit("batch", stage=1, epoch=epoch, batch=batch, batches=5, loss=1.0, accuracy=0.5, images_per_second=40.0)
            loss, acc = 1.0 / epoch, 1 - 0.5 / epoch
            emit("epoch", stage=1, epoch=epoch, epochs=total, loss=loss, accuracy=acc,
                 val_loss=loss * 1.1, val_accuracy=acc - 0.05, learning_rate=0.001, seconds=5 * delay)
            with open(run / "history.csv", "a") as handle:
                handle.write(f"{epoch},1,{loss},{acc},{loss * 1.1},{acc - 0.05},0.001,{5 * delay}\n")
            (run / "checkpoints").mkdir(exist_ok=True)
            (run / "checkpoints" / "state.json").write_text(json.dumps(
                {"checkpoint": f"epoch-{epoch}", "next_epoch": epoch, "epochs": total, "finished": False}))
            emit("checkpoint", epoch=epoch, kind="resume", path=str(run / "checkpoints"), val_accuracy=acc - 0.05)
            if os.environ.get("FAKE_DIE"):
                for n in range(80):
                    print(f"fake stderr line {n}", file=sys.stderr, flush=True)
                print("about to be killed", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        state = {"checkpoint": f"epoch-{total}", "next_epoch": total, "epochs": total, "finished": True}
        (run / "checkpoints" / "state.json").write_text(json.dumps(state))
        best = 1 - 0.5 / total - 0.05
        (run / "result.json").write_text(json.dumps(
            {"backbone": "fakenet", "best_val_accuracy": best, "best_epoch": total, "epochs": total, "data_dir": None}))
        (run / "report").mkdir(exist_ok=True)
        (run / "report" / "metrics.json").write_text("{}")
        emit("done", run_dir=str(run), best={"epoch": total, "val_accuracy": best, "val_loss": 0.1},
             epochs_run=total, seconds=1.0, beats_chance=True)
    except KeyboardInterrupt:
        emit("stopped", reason="interrupted", epoch=0, run_dir=str(run),
             resume_command=["convnet-train", "train", "--resume", str(run), "--progress", "jsonl"])
        sys.exit(130)
    """
)


def write_dataset(root: Path, classes=("cats", "dogs"), per_class: int = 6) -> Path:
    """Class folders of small PNGs written with cv2 (digit-like strokes, one per class)."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            image = np.zeros((32, 32, 3), np.uint8)
            cv2.putText(
                image, str(index), (8 + int(rng.integers(0, 4)), 26), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2
            )
            cv2.imwrite(str(folder / f"{n}.png"), image)
    return root
