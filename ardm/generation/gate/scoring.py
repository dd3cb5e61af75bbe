"""The Dynamic Overwrite Gate's pieces as pure functions ([S0] §2, SPEC §6.8).

    signals    H (entropy), M (top1 - top2 logit margin), Dl (confidence change of y~)
    normalise  s~ = (s - mu)/sqrt(v + 1e-6) with FROZEN statistics (sampling never depends on the batch)
    prior      r_i^(k) = sigmoid(alpha (tau(i) - k)),  tau(i) = (K/n)(i + delta)
    combine    p = 1 - (1 - u)(1 - r)  (noisy-OR; "max" and "product" for ablations)
    scorers    u = GateScorer(GateInputs): LinearGate (softplus betas), MLPGate (SPEC §6.8 "learned"),
               NoGate (u = 0); the first two are nn.Modules trained by ardm.generation.gate.training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from ardm.core.registry import Registry
from ardm.errors import ArdmError

SIGNALS = ("entropy", "margin", "confidence_change")
DL_CLIP = 20.0  # SPEC §6.8: confidence change clipped to [-20, 20] (nats)
VAR_EPS = 1e-6  # SPEC §6.8: s~ = (s - mu)/sqrt(v + 1e-6)


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


def margin_of(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Z(y_i) - max_{v != y_i} Z(v): the top1 - top2 gap when y_i is the model's argmax, negative by
    how far the model prefers another symbol when it is not. y [B, L] valid ids. [B, L]"""
    z = logits.float()
    if z.shape[-1] < 2:
        return torch.zeros(y.shape, device=z.device)
    idx = y[..., None]
    best_other = z.scatter(-1, idx, -math.inf).amax(-1)
    return z.gather(-1, idx)[..., 0] - best_other


def signals(logits: torch.Tensor, prev_logits: torch.Tensor | None, x: torch.Tensor, mask_id: int,
            y_tilde: str = "current", margin_kind: str = "top2") -> torch.Tensor:
    """The raw signals (H, M, Dl) per position. y~ = the current token ("current", Reading: the token
    the gate keeps or overwrites) or argmax q^(k) ("argmax", literal [S0]); Dl = 0 at MASKs.
    margin_kind "top2": M = Z_(1) - Z_(2) ([S0]); "current": at visible positions M is the margin of
    the token there (margin_of), so a token the model confidently disagrees with reads as uncertain
    (top2 calls it certain); top2 at MASKs. [B, L, 3]"""
    masked = x == mask_id
    current = torch.where(masked, 0, x)  # valid ids: MASK positions read symbol 0, then are overridden
    y = logits.argmax(-1) if y_tilde == "argmax" else current
    dl = torch.where(masked, 0.0, confidence_change(logits, prev_logits, y))
    m = margin(logits)
    if margin_kind == "current":
        m = torch.where(masked, m, margin_of(logits, current))
    return torch.stack([entropy(logits), m, dl], dim=-1)


@dataclass(frozen=True)
class SignalStats:
    """Frozen normalisation statistics of (H, M, Dl): from gate training or a calibration run
    (SPEC §6.8); mean 0, var 1 (no normalisation) when none are given."""

    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # one per signal (SIGNALS)
    var: tuple[float, ...] = (1.0, 1.0, 1.0)

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


# how uncertainty u and prior r make the overwrite probability: noisy-OR ([S0]); max and product are
# the ablations of SPEC §8.4
COMBINERS: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("gate combine")
COMBINERS.add("noisy_or", noisy_or)
COMBINERS.add("max", torch.maximum)
COMBINERS.add("product", lambda u, r: u * r)


def combine(u: torch.Tensor, r: torch.Tensor, how: str = "noisy_or") -> torch.Tensor:
    """Overwrite probability from uncertainty u and prior r with the rule `how` (COMBINERS)."""
    return COMBINERS[how](u, r)


# ---- scorers -------------------------------------------------------------------------------------


@dataclass
class GateInputs:
    """Everything a gate scorer may use at step k (SPEC §6.8, MLP input [h; H~; M~; Dl~; i/n; k/K; r])."""

    signals: torch.Tensor  # [B, L, 3] normalised (H~, M~, Dl~)
    hidden: torch.Tensor  # [B, L, d] the denoiser's last hidden states
    rel_pos: torch.Tensor  # [L] i/n within the target (negative on the prompt)
    progress: float | torch.Tensor  # k/K (a [B, 1] tensor when rows are at different steps)
    prior: torch.Tensor  # [B, L] r


class GateScorer(Protocol):
    """u = scorer(inputs) in [0, 1], shape [B, L]: LinearGate, MLPGate (trainable nn.Modules), NoGate."""

    def __call__(self, inputs: GateInputs) -> torch.Tensor: ...


def _softplus_inverse(b: float) -> float:
    """The raw value whose softplus is b >= 0 (-inf for b = 0, where softplus gives exactly 0)."""
    return -math.inf if b == 0 else b + math.log(-math.expm1(-b))


class LinearGate(nn.Module):
    """u = sigmoid(b0 + bH H~ - bM M~ - bD Dl~) ([S0] §2.4). Defaults (untuned, SPEC §6.8 init):
    b0 = -4 (u ≈ 0.018 at average signals), bH = bM = bD = 1; bH, bM, bD >= 0 so that higher
    entropy raises u and a larger margin or rising confidence lowers it. The betas are
    softplus-parameterised so gate training (SPEC §7) keeps them >= 0."""

    kind = "linear"

    def __init__(self, b0: float = -4.0, b_h: float = 1.0, b_m: float = 1.0, b_d: float = 1.0):
        super().__init__()
        if min(b_h, b_m, b_d) < 0:
            raise ArdmError(f"linear gate: b_h, b_m, b_d must be >= 0, got {b_h}, {b_m}, {b_d}")
        self.b0 = nn.Parameter(torch.tensor(float(b0)))
        self.raw_betas = nn.Parameter(torch.tensor([_softplus_inverse(float(b)) for b in (b_h, b_m, b_d)]))

    @property
    def betas(self) -> torch.Tensor:  # [3] (bH, bM, bD) >= 0
        return F.softplus(self.raw_betas)

    def hyperparameters(self) -> dict:
        return {}

    def forward(self, inputs: GateInputs) -> torch.Tensor:
        sign = torch.tensor([1.0, -1.0, -1.0], device=self.b0.device)
        w = (self.betas * sign).to(inputs.signals.dtype)
        return torch.sigmoid(self.b0.to(inputs.signals.dtype) + inputs.signals @ w)


MLP_HIDDEN = 128  # SPEC §6.8 "Added default": Linear(d + 6, 128) - GELU - Linear(128, 1)
MLP_INIT_U = 0.02  # SPEC §6.8: final bias init logit(0.02), a gate that starts almost closed


class MLPGate(nn.Module):
    """The learned gate ([S0] §2.4, SPEC §6.8): u = sigmoid(MLP([LN(h) ; H~ ; M~ ; Dl~ ; i/n ; k/K ; r])).
    h is detached (the denoiser stays frozen); the LayerNorm's affine parameters belong to the gate.
    The last layer starts small (std 0.01) so u starts near 0.02 everywhere."""

    kind = "mlp"

    def __init__(self, d_model: int, hidden: int = MLP_HIDDEN, init_u: float = MLP_INIT_U):
        super().__init__()
        if d_model < 1 or hidden < 1 or not 0 < init_u < 1:
            raise ArdmError(f"mlp gate: need d_model >= 1, hidden >= 1, 0 < init_u < 1, "
                            f"got {d_model}, {hidden}, {init_u}")
        self.d_model, self.hidden = d_model, hidden
        self.norm = nn.LayerNorm(d_model)
        out = nn.Linear(hidden, 1)
        self.mlp = nn.Sequential(nn.Linear(d_model + 6, hidden), nn.GELU(), out)
        nn.init.normal_(out.weight, std=0.01)
        nn.init.constant_(out.bias, math.log(init_u / (1 - init_u)))

    def hyperparameters(self) -> dict:
        return {"d_model": self.d_model, "hidden": self.hidden}

    def forward(self, inputs: GateInputs) -> torch.Tensor:
        sig = inputs.signals.float()
        B, L, _ = sig.shape
        h = self.norm(inputs.hidden.detach().float())  # [B, L, d]
        rel = inputs.rel_pos.float().to(sig.device).expand(B, L)
        prog = torch.as_tensor(inputs.progress, dtype=torch.float32, device=sig.device).expand(B, L)
        feats = torch.cat([h, sig, rel[..., None], prog[..., None], inputs.prior.float()[..., None]], -1)
        return torch.sigmoid(self.mlp(feats)[..., 0])


SCORERS = {"linear": LinearGate, "mlp": MLPGate}


def make_scorer(kind: str, d_model: int, **hyperparameters) -> LinearGate | MLPGate:
    """A fresh trainable scorer: "linear" (SPEC §6.8 init) or "mlp" (for a denoiser of width d_model)."""
    if kind == "linear":
        return LinearGate(**hyperparameters)
    if kind == "mlp":
        return MLPGate(**{"d_model": d_model, **hyperparameters})
    raise ArdmError(f"gate kind must be one of {tuple(SCORERS)}, got {kind!r}")


class NoGate:
    """u = 0: the gate reduces to the positional prior (the [S0] "fixed schedule" baseline)."""

    def __call__(self, inputs: GateInputs) -> torch.Tensor:
        return torch.zeros(inputs.signals.shape[:-1], device=inputs.signals.device)
