"""Rank and world bookkeeping for `torchrun` (DDP: gloo on CPU, NCCL on GPU); a no-op in one process."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


class Distributed:
    """Rank/world bookkeeping; a no-op for single-process runs."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        self.device = device
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
            if device.type == "cuda":
                local = int(os.environ.get("LOCAL_RANK", "0"))
                self.device = torch.device("cuda", local)
                torch.cuda.set_device(self.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast_str(self, s: str | None) -> str | None:
        if not self.enabled:
            return s
        box = [s]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def max_(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        where = self.device if self.device.type == "cuda" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=where)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def gather(self, obj: object) -> list:
        """Every rank's `obj`, in rank order (a collective: every rank must call it)."""
        if not self.enabled:
            return [obj]
        everyone: list = [None] * self.world
        dist.all_gather_object(everyone, obj)
        return everyone

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def param_digest(model: torch.nn.Module) -> float:
    """A cheap fingerprint of the weights: equal on every rank when DDP kept them in sync."""
    with torch.no_grad():
        return float(sum((p.double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))
