"""One line describing the machine a benchmark ran on, for the figures it prints."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine(*extra: str) -> str:
    """CPU model, logical CPUs, OS, Python, and any ``extra`` library versions."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{model}, {os.cpu_count()} logical CPUs", f"{platform.system()} {platform.machine()}",
             f"Python {platform.python_version()}", *extra]
    return ", ".join(parts)
