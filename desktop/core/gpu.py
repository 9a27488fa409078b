"""Is an NVIDIA GPU installed? A cheap probe that never loads CUDA.

It decides only whether running on the CPU deserves a notice (desktop/core/providers.py):
with a GPU present, a CPU session means something is missing; without one it is
simply how the machine works. The execution provider is never chosen from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_DEVICE_NODE = re.compile(r"nvidia\d+")
_LINUX_GPU_LIST = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver drives
_WSL_DRIVER = Path("/usr/lib/wsl/lib/libcuda.so.1")  # WSL2 exposes the GPU as /dev/dxg, not /dev/nvidia0
_WINDOWS_DRIVER = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32" / "nvcuda.dll"


def nvidia_gpu_present() -> bool:
    """True when an NVIDIA device node, the Linux driver's GPU list, or the WSL/Windows driver exists."""
    try:
        if any(_DEVICE_NODE.fullmatch(entry.name) for entry in os.scandir("/dev")):
            return True
    except OSError:
        pass
    try:
        if _LINUX_GPU_LIST.is_dir() and any(_LINUX_GPU_LIST.iterdir()):
            return True
        return _WSL_DRIVER.exists() or (os.name == "nt" and _WINDOWS_DRIVER.exists())
    except OSError:
        return False
