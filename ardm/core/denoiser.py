"""The `Denoiser` protocol: what the generation loop, the samplers and the evaluation need of a model.

`ardm.core.model.TransformerDenoiser` is the implementation; tests drive the same loop with tiny
hand-written models (tests/toy_models.py) that satisfy this protocol without being transformers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch


class DenoiserConfig(Protocol):
    """The model facts the loop reads: vocabulary (MASK = vocab_size), longest length, attention."""

    vocab_size: int
    max_len: int
    attention: str  # "bidirectional" (denoiser) | "causal" (AR model)
    time_conditioning: str  # "per_token" | "none"

    @property
    def causal(self) -> bool: ...


class Denoiser(Protocol):
    """f_theta(x, t) -> (logits [B, L, V], hidden [B, L, D]) at per-token noise levels t [B, L]."""

    @property
    def cfg(self) -> DenoiserConfig: ...

    def __call__(self, x: torch.Tensor,
                 t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...
