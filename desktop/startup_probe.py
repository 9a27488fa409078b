"""`convnet-studio --exit-when-ready`: the start-up benchmark's hook into the real app.

benchmarks/startup.py starts the app with this flag and reads one JSON line: how long the
process took to show the window with its model loaded, and its memory. Kept out of
desktop/app.py, which is about starting the app, not measuring it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def process_age_s() -> float | None:
    """Seconds since this process was started, from /proc (Linux); None where that is unavailable.

    Counting from the kernel's start time includes the interpreter's own start-up and
    imports, which a timer started in Python would miss.
    """
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii", errors="replace")
        # Field 2 (the command name) may contain spaces; field 3 starts after its last ')'.
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[22 - 3])
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return None


def resident_mb() -> float | None:
    """VmRSS in MB (10^6 bytes) from /proc/self/status; None where that is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def exit_when_ready(app, window) -> dict[str, int]:
    """Quit once the model has loaded into the shown window, printing one JSON line to stdout.

    Returns the holder of the exit status (0 when ready, 1 when the model failed), filled
    in by the controller's signals while the event loop runs.
    """
    from PySide6.QtCore import QTimer

    outcome: dict[str, int] = {}

    def finish(report: dict[str, object], status: int) -> None:
        if outcome:  # a second load finishing later changes nothing
            return
        outcome["status"] = status
        print(json.dumps(report), flush=True)
        window.close()  # the normal shutdown path: views and worker threads stop cleanly
        app.quit()

    def ready(model) -> None:
        # One more turn of the event loop, so the window has applied the model and painted.
        QTimer.singleShot(
            0,
            lambda: finish(
                {
                    "ready_s": process_age_s(),
                    "rss_mb": resident_mb(),
                    "model": model.info.name,
                    "provider": model.provider_in_use,
                    "window_shown": window.isVisible(),
                },
                0,
            ),
        )

    window.controller.model_changed.connect(ready)
    window.controller.model_failed.connect(lambda path, message: finish({"error": message, "model": path}, 1))
    return outcome
