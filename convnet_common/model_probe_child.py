"""The child side of model_probe.py: open a model, run its batch shapes, print how it went.

Run as `python -m convnet_common.model_probe_child MODEL MEMORY_BYTES SIZES measure|-`.
It prints one JSON line and never raises. {"bounded": true, ...}: everything that could
run ran within the limits — including a model the caller will then refuse for its
answers or its contract (the caller's own checks say why, in their own words, and can
now run it safely). {"over_memory": true}: an allocation failed under the address-space
limit (ONNX Runtime reports it as an error; the parent turns it into the memory refusal).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from convnet_common.batch_size import measure_batch_size
from convnet_common.model_contract import ContractError, read_contract
from convnet_common.model_probe import ADDRESS_SPACE_SLACK
from convnet_common.onnx_file import ModelFileError, inspect_model_file

# How ONNX Runtime's messages say an allocation failed (its arena, or C++'s bad_alloc).
_ALLOCATION_FAILED = ("AllocateRaw", "bad_alloc", "bad allocation", "Failed to allocate")


def _limit_address_space(memory_bytes: int) -> None:
    try:
        import resource

        limit = memory_bytes + ADDRESS_SPACE_SLACK
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # Windows has no rlimits (and a lower hard limit stays): the parent's watch still holds


def _peak_bytes() -> int | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    return next((int(x.split()[1]) * 1024 for x in status.read_text().splitlines() if x.startswith("VmHWM:")), None)


def main(path: str, memory_bytes: int, batch_sizes: list[int], measure: bool) -> dict:
    _limit_address_space(memory_bytes)
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    try:
        metadata = inspect_model_file(Path(path)).metadata
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = 1  # the folder-run session; one thread is enough to measure cost
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        contract = read_contract(metadata, session.get_inputs(), session.get_outputs())
    except (ModelFileError, ContractError, OSError):
        return {"bounded": True, "ran": []}  # refused before running: the caller's checks say why
    except MemoryError:
        return {"over_memory": True}
    except Exception as error:  # noqa: BLE001 - ORT's own types; not loadable, the caller says why
        return {"over_memory": True} if any(s in str(error) for s in _ALLOCATION_FAILED) else {"bounded": True}
    sizes = [contract.fixed_batch] if contract.fixed_batch else batch_sizes
    ran: list[int] = []

    def run(batch) -> None:
        session.run(contract.test_outputs, {contract.input_name: batch})

    try:
        for size in sizes:
            run(contract.test_batch(size))
            ran.append(size)
        throughput = measure_batch_size(run, contract.input_size) if measure and not contract.fixed_batch else None
    except MemoryError:
        return {"over_memory": True}
    except Exception as error:  # noqa: BLE001 - a failed run is the caller's to report; only cost matters here
        if any(sign in str(error) for sign in _ALLOCATION_FAILED):
            return {"over_memory": True}
        return {"bounded": True, "ran": ran}
    return {"bounded": True, "ran": ran, "throughput_batch": throughput, "peak_bytes": _peak_bytes()}


def run_float_input(path: str, memory_bytes: int, shape: list[int]) -> dict:
    """A foreign graph's first run (the Adopt dialog's preview): zeros of `shape` in the input's float type.

    The contract is not applied (the graph is not a ConvNet Studio model yet); only cost
    is judged, as for any first run.
    """
    _limit_address_space(memory_bytes)
    import numpy as np
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    try:
        inspect_model_file(Path(path))
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        node = session.get_inputs()[0]
        dtype = np.float16 if node.type == "tensor(float16)" else np.float32
        session.run(None, {node.name: np.zeros(shape, dtype)})
    except MemoryError:
        return {"over_memory": True}
    except (ModelFileError, OSError):
        return {"bounded": True, "ran": []}
    except Exception as error:  # noqa: BLE001 - ORT's own types; the caller's own run says what is wrong
        return {"over_memory": True} if any(s in str(error) for s in _ALLOCATION_FAILED) else {"bounded": True}
    return {"bounded": True, "ran": [shape[0]], "peak_bytes": _peak_bytes()}


if __name__ == "__main__":
    if sys.argv[4].startswith("float:"):
        float_shape = [int(part) for part in sys.argv[4][len("float:") :].split("x")]
        print(json.dumps(run_float_input(sys.argv[1], int(sys.argv[2]), float_shape)), flush=True)
        sys.exit(0)
    sizes = [int(part) for part in sys.argv[3].split(",") if part]
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sizes, sys.argv[4] == "measure")), flush=True)
