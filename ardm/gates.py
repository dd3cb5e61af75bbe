"""The Dynamic Overwrite Gate's pieces as pure functions ([S0] §2, SPEC §6.8).

    signals    H (entropy), M (top1 - top2 logit margin), Dl (confidence change of y~)
    normalise  s~ = (s - mu)/sqrt(v + 1e-6) with FROZEN statistics (sampling never depends on the batch)
    prior      r_i^(k) = sigmoid(alpha (tau(i) - k)),  tau(i) = (K/n)(i + delta)
    combine    p = 1 - (1 - u)(1 - r)  (noisy-OR; "max" and "product" for ablations)
    scorers    u = GateScorer(GateInputs): LinearGate now; an MLP gate (SPEC §6.8 "learned") later
               implements the same protocol.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from .errors import ArdmError

SIGNALS = ("entropy", "margin", "confidence_change")
DL_CLIP = 20.0  # SPEC §6.8: confidence change clipped to [-20, 20] (nats)
VAR_EPS = 1e-6  # SPEC §6.8: s~ = (s - mu)/sqrt(v + 1e-6)
COMBINE = ("noisy_or", "max", "product")


# ---- signals -------------------------------------------------------------------------------------


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H_i = -sum_y q_i(y) log q_i(y), fp32 log-softmax. [..., V] -> [...]"""
    logp = logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


def margin(logits: torch.Tensor) -> torch.Tensor:
    """M_i = Z_(1) - Z_(2), the top1 - top2 logit gap (0 for a one-symbol vocabulary). [..., V] -> [...]"""
    if logits.shape[-1] < 2:
        return torch.zeros(logits.shape[:-1], device=logits.device)
    top = logits.float().topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def confidence_change(logits: torch.Tensor, prev_logits: torch.Tensor | None,
                      y: torch.Tensor) -> torch.Tensor:
    """Dl_i = log q^(k)(y_i) - log q^(k-1)(y_i), clipped to [-20, 20]; 0 when there is no previous
    step. y [B, L] must be valid ids (callers pass 0 at MASK positions and zero those out)."""
    if prev_logits is None:
        return torch.zeros(y.shape, device=logits.device)
    idx = y[..., None]
    now = logits.float().log_softmax(-1).gather(-1, idx)[..., 0]
    before = prev_logits.float().log_softmax(-1).gather(-1, idx)[..., 0]
    return (now - before).clamp(-DL_CLIP, DL_CLIP)


def signals(logits: torch.Tensor, prev_logits: torch.Tensor | None, x: torch.Tensor, mask_id: int,
            y_tilde: str = "current") -> torch.Tensor:
    """The raw signals (H, M, Dl) per position. y~ = the current token ("current", Reading: the token
    the gate keeps or overwrites) or argmax q^(k) ("argmax", literal [S0]); Dl = 0 at MASKs. [B, L, 3]"""
    masked = x == mask_id
    y = logits.argmax(-1) if y_tilde == "argmax" else torch.where(masked, 0, x)
    dl = torch.where(masked, 0.0, confidence_change(logits, prev_logits, y))
    return torch.stack([entropy(logits), margin(logits), dl], dim=-1)


@dataclass(frozen=True)
class SignalStats:
    """Frozen normalisation statistics of (H, M, Dl): from gate training or a calibration run
    (SPEC §6.8); mean 0, var 1 (no normalisation) when none are given."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    var: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.var) != 3:
            raise ArdmError(f"signal statistics need 3 means and 3 variances {SIGNALS}")
        if not all(math.isfinite(m) for m in self.mean) or not all(v >= 0 for v in self.var):
            raise ArdmError(f"signal statistics must be finite with variances >= 0, got {self}")

    def to_dict(self) -> dict:
        return {"signals": list(SIGNALS), "mean": list(self.mean), "var": list(self.var)}

    @classmethod
    def from_dict(cls, d: dict) -> SignalStats:
        try:
            return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["var"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ArdmError(f"signal statistics need 'mean' and 'var' lists of 3 numbers ({e})") from None

    @classmethod
    def load(cls, path: str | Path) -> SignalStats:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise ArdmError(f"cannot read signal statistics from {path}: {e}") from None


def normalise(sig: torch.Tensor, stats: SignalStats) -> torch.Tensor:
    """s~ = (s - mu)/sqrt(v + 1e-6) per signal (last dim). [..., 3]"""
    mean = torch.tensor(stats.mean, dtype=sig.dtype, device=sig.device)
    var = torch.tensor(stats.var, dtype=sig.dtype, device=sig.device)
    return (sig - mean) / torch.sqrt(var + VAR_EPS)


# ---- prior and combination -----------------------------------------------------------------------


def maturity_prior(n: int, k: int, K: int, alpha: float = 1.0, delta: float = 0.5) -> torch.Tensor:
    """r_i^(k) = sigmoid(alpha (tau(i) - k)), tau(i) = (K/n)(i + delta), i = 0..n-1 within the target,
    k = 1..K ([S0] §2.3, SPEC §6.8 Reading). Position i matures at step tau(i). [n] float32"""
    i = torch.arange(n, dtype=torch.float64)
    tau = (K / n) * (i + delta)
    return torch.sigmoid(alpha * (tau - k)).float()


def noisy_or(u: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """p = 1 - (1 - u)(1 - r) ([S0] §2.4): overwrite if either cause fires."""
    return 1.0 - (1.0 - u) * (1.0 - r)


def combine(u: torch.Tensor, r: torch.Tensor, how: str = "noisy_or") -> torch.Tensor:
    """Overwrite probability from uncertainty u and prior r: noisy-OR ([S0]) or, for ablations
    (SPEC §8.4), max(u, r) or u * r."""
    if how == "noisy_or":
        return noisy_or(u, r)
    if how == "max":
        return torch.maximum(u, r)
    if how == "product":
        return u * r
    raise ArdmError(f"combine must be one of {COMBINE}, got {how!r}")


# ---- scorers -------------------------------------------------------------------------------------


@dataclass
class GateInputs:
    """Everything a gate scorer may use at step k (SPEC §6.8, MLP input [h; H~; M~; Dl~; i/n; k/K; r])."""

    signals: torch.Tensor  # [B, L, 3] normalised (H~, M~, Dl~)
    hidden: torch.Tensor  # [B, L, d] the denoiser's last hidden states
    rel_pos: torch.Tensor  # [L] i/n within the target (negative on the prompt)
    progress: float  # k/K
    prior: torch.Tensor  # [B, L] r


class GateScorer(Protocol):
    """u = scorer(inputs) in [0, 1], shape [B, L]. LinearGate now; a learned MLP gate later."""

    def __call__(self, inputs: GateInputs) -> torch.Tensor: ...


@dataclass
class LinearGate:
    """u = sigmoid(b0 + bH H~ - bM M~ - bD Dl~) ([S0] §2.4). Defaults (untuned, SPEC §6.8 init):
    b0 = -4 (u ≈ 0.018 at average signals), bH = bM = bD = 1; bH, bM, bD >= 0 so that higher
    entropy raises u and a larger margin or rising confidence lowers it."""

    b0: float = -4.0
    b_h: float = 1.0
    b_m: float = 1.0
    b_d: float = 1.0
    coef: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.b_h, self.b_m, self.b_d) < 0:
            raise ArdmError(f"linear gate: b_h, b_m, b_d must be >= 0, "
                            f"got {self.b_h}, {self.b_m}, {self.b_d}")
        self.coef = (self.b_h, -self.b_m, -self.b_d)

    def __call__(self, inputs: GateInputs) -> torch.Tensor:
        w = torch.tensor(self.coef, dtype=inputs.signals.dtype, device=inputs.signals.device)
        return torch.sigmoid(self.b0 + inputs.signals @ w)


class NoGate:
    """u = 0: the gate reduces to the positional prior (the [S0] "fixed schedule" baseline)."""

    def __call__(self, inputs: GateInputs) -> torch.Tensor:
        return torch.zeros(inputs.signals.shape[:-1], device=inputs.signals.device)
