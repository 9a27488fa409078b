"""Start TensorFlow without its CUDA start-up noise on machines that have no NVIDIA GPU.

On a machine without an NVIDIA driver, importing TensorFlow and its first device listing
write five lines to stderr that are not meant for a user of `convnet-train`:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    (both twice, once per TensorFlow shared library)
    E0000 ... cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)

None of them can be turned off from outside: the first four are written by Abseil before
TensorFlow initialises its logging, so TF_CPP_MIN_LOG_LEVEL does not apply to them, and
CUDA_VISIBLE_DEVICES="" does not stop TensorFlow from calling cuInit. So `load_tensorflow`
decides *before* importing TensorFlow whether an NVIDIA GPU can be there at all (device
nodes plus a loadable driver library). If not, it imports TensorFlow and lists its
devices (which is when cuInit runs, once per process) with file descriptor 2 sent to a
temporary file, then writes back everything except those known CUDA lines. Anything else
TensorFlow or Python printed meanwhile reaches stderr unchanged, in order.

On a machine with an NVIDIA device and driver nothing is filtered or changed: TensorFlow
uses the GPU as usual, and its CUDA messages there (missing cuDNN, say) are real news.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path

# TensorFlow's own C++ INFO and WARNING lines (oneDNN notes, CPU instruction notes).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Abseil's line format: severity, date, time, thread, file:line] message.
_ABSL_LINE = re.compile(rb"^[IWEF]\d{4} [\d:.]+\s+\d+ (?P<file>[\w.]+):\d+\] (?P<message>.*)$")
_ABSL_PREINIT = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# Files and messages that only say "there is no usable CUDA here".
_CUDA_FILE = re.compile(rb"cuda|cudart|gpu_device|dso_loader", re.IGNORECASE)
_CUDA_MESSAGE = re.compile(rb"cuInit|cuda drivers|GPU will not be used|TensorRT|libcuda", re.IGNORECASE)


def nvidia_gpu_possible(dev: str | os.PathLike[str] = "/dev") -> bool:
    """True when an NVIDIA GPU may be usable: a device node and a loadable driver library.

    Linux exposes each NVIDIA GPU as /dev/nvidia0, /dev/nvidia1, … (WSL 2 as /dev/dxg) and
    the driver as libcuda.so.1; without both, CUDA cannot work and TensorFlow's attempt
    only produces noise. The library is loaded only when a device node exists.
    """
    dev = Path(dev)
    nodes = list(dev.glob("nvidia[0-9]*")) + [p for p in (dev / "dxg",) if p.exists()]
    if not nodes:
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def is_cuda_noise(line: bytes) -> bool:
    """Whether one stderr line is TensorFlow saying that CUDA is not there."""
    line = line.rstrip(b"\r\n")
    if line == _ABSL_PREINIT:
        return True
    match = _ABSL_LINE.match(line)
    return bool(match and (_CUDA_FILE.search(match["file"]) or _CUDA_MESSAGE.search(match["message"])))


def filter_cuda_noise(text: bytes) -> bytes:
    return b"".join(line for line in text.splitlines(keepends=True) if not is_cuda_noise(line))


def load_tensorflow():
    """Import TensorFlow (and Keras) once, quietly where there is no NVIDIA GPU; returns tf."""
    if "tensorflow" in sys.modules or nvidia_gpu_possible():
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  imports TensorFlow, its backend
            import tensorflow as tf

            tf.config.list_physical_devices()  # the first listing is when cuInit runs
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = filter_cuda_noise(captured.read())
            while kept:  # back to the real stderr, where it was going
                kept = kept[os.write(2, kept) :]
    return tf
