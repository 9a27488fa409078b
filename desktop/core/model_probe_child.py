"""The child side of desktop/core/model_probe.py: load a model, run its batch shapes, print a verdict.

Run as `python -m desktop.core.model_probe_child MODEL MEMORY_BYTES`. It prints one JSON
line ({"ok": true, "peak_bytes": N} or {"ok": false, "message": "..."}) and never raises:
whatever a stranger's graph does here becomes a message, not a traceback. A separate
module because it needs desktop.core.model, which itself calls model_probe.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from desktop.core.model import load_model
from desktop.core.model_metadata import ModelLoadError
from desktop.core.model_probe import ADDRESS_SPACE_SLACK, megabytes

# How ONNX Runtime's messages say an allocation failed (its arena, or C++'s bad_alloc).
_ALLOCATION_FAILED = ("AllocateRaw", "bad_alloc", "bad allocation", "Failed to allocate")


def _over_memory(path: str, memory_bytes: int) -> dict:
    limit = megabytes(memory_bytes)
    return {"ok": False, "message": f"{Path(path).name} was refused: its test run needed more than {limit} of memory"}


def main(path: str, memory_bytes: int) -> dict:
    """In the child: the whole load, then the folder-run batch; never raises."""
    try:
        import resource

        limit = memory_bytes + ADDRESS_SPACE_SLACK
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # Windows has no rlimits; the parent's watch and time limit still hold
    try:
        model = load_model(path, provider="cpu", probe=False)
        model.throughput_batch_size()  # runs the batch sizes folder runs will use
        status = Path("/proc/self/status")
        peak = None
        if status.exists():
            peak = next(int(x.split()[1]) * 1024 for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
        return {"ok": True, "peak_bytes": peak}
    except ModelLoadError as error:
        if not any(sign in str(error) for sign in _ALLOCATION_FAILED):
            return {"ok": False, "message": str(error)}
        return _over_memory(path, memory_bytes)  # ONNX Runtime's allocation hit the address-space limit
    except MemoryError:
        return _over_memory(path, memory_bytes)
    except Exception as error:  # noqa: BLE001 - any failure of a stranger's graph is a refusal, not a crash
        message = f"{Path(path).name}: failed on a test image: {type(error).__name__}: {error}"
        return {"ok": False, "message": message.splitlines()[0][:500] if message else ""}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))), flush=True)
