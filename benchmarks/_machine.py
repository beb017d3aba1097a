"""The machine lines every benchmark prints above its tables (date, CPU, versions)."""

from __future__ import annotations

import datetime
import os
import platform

import torch


def machine(*versions: str) -> list[tuple[str, str]]:
    """``[(key, value), ...]``: date, CPU model with cores and torch threads, versions
    (python and torch, then ``versions`` such as ``"librosa 0.11.0"``)."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    found = ", ".join(
        (f"python {platform.python_version()}", f"torch {torch.__version__}", *versions)
    )
    return [
        ("date", datetime.date.today().isoformat()),
        ("cpu", f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"),
        ("versions", found),
    ]
