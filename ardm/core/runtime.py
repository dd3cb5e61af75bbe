"""Run-time plumbing shared by every layer: which device to run on, and the JSON-lines metrics log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ardm.core.checkpoint import atomic_write_text
from ardm.errors import ArdmError


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; a cuda device on a machine without CUDA is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ArdmError(f"train.device={name!r} but CUDA is not available on this machine")
    return torch.device(name)


class MetricsLog:
    """Append-only JSON lines (rank 0). On resume, lines past the checkpoint's step are dropped."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        keep = [ln for ln in self.path.read_text().splitlines() if ln.strip()
                and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(ln + "\n" for ln in keep))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
