"""The gate's options (SPEC §6.8) and its mask rules, validated from the registries they name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ardm.core.registry import Registry
from ardm.errors import ArdmError
from ardm.generation.gate.scoring import COMBINERS
from ardm.generation.samplers.base import top_n_mask

# which positions the gate writes, given p: m ~ Bernoulli(p) ([S0]); p > theta; or the top `budget` p
# among visible tokens (MASKs always, for fill="all"). Arguments: (p, coin, masked, visible, options).
MaskRule = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, "GateOptions"], torch.Tensor]
MASK_RULES: Registry[MaskRule] = Registry("gate mask")
MASK_RULES.add("bernoulli", lambda p, coin, masked, visible, o: coin < p)
MASK_RULES.add("threshold", lambda p, coin, masked, visible, o: p > o.theta)
MASK_RULES.add("budget", lambda p, coin, masked, visible, o: masked | top_n_mask(
    torch.where(visible, p, float("-inf")), torch.full_like(p[:, 0], o.budget)))


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ArdmError(f"gate: {name} must be one of {allowed}, got {value!r}")


@dataclass
class GateOptions:
    gate: str = "linear"  # "linear" | "none" (u = 0: prior only) | "learned" (a trained gate, passed
    #                       as scorer=/stats=; `ardm sample` loads the one beside the checkpoint)
    b0: float = -4.0  # linear gate (SPEC §6.8 init; untuned)
    b_h: float = 1.0
    b_m: float = 1.0
    b_d: float = 1.0
    prior: bool = True  # False: r = 0 (uncertainty only)
    alpha: float = 1.0  # prior sharpness (transition width ≈ 4/alpha steps)
    delta: float = 0.5  # prior offset, in [0, 1] so every position matures within the run
    combine: str = "noisy_or"  # "noisy_or" ([S0]) | "max" | "product" (ablations)
    mask: str = "bernoulli"  # "bernoulli" ([S0]) | "threshold" (p > theta) | "budget" (top-budget p)
    theta: float = 0.5
    budget: int = 1  # mask="budget": overwrites per step
    cap: int = 0  # at most this many overwrites per step (highest p first); 0 = no cap
    fill: str = "schedule"  # "schedule": a count rule reveals MASKs (the default: best on text and
    #                         Sudoku, docs/gate.md) | "all": MASKs get p = 1, a full draft at step 1
    mode: str = "replace"  # "replace" (T2T) | "remask" (T2M) | "remdm" (a ReMDM remask budget spread
    #                        by p, reveals by the count rule: entropy-preserving, SPEC §11.2)
    eta: float = 0.05  # mode="remdm": remask rate sigma = min(eta, sigma_max) of the visible tokens
    reveal: str = "confidence"  # count-rule reveals: highest q(new) first | "random" (MDLM-like) |
    #                             "margin": largest top-1 - top-2 gap of q first (Kim et al. 2025) |
    #                             "sampled": drawn in proportion to q(new)^(1/T) (confidence at T = 0) |
    #                             "joint": position ∝ sum_v q(v)^(1/T) (random at T = 1, confidence at 0)
    y_tilde: str = "current"  # token whose confidence change Dl measures: "current" | "argmax"
    margin: str = "top2"  # M: top1 - top2 logit gap ([S0]) | "current": the visible token's own margin
    argmax: bool = False  # new ids by argmax instead of a draw at the run's temperature
    stats_file: str = ""  # JSON {"mean": [3], "var": [3]} (gate training or calibrate()); "" = 0/1
    collect_stats: bool = False  # accumulate raw signal sums in aux (for calibrate())

    def __post_init__(self) -> None:
        _one_of("gate", self.gate, ("linear", "none", "learned"))
        _one_of("combine", self.combine, COMBINERS.names())
        _one_of("mask", self.mask, MASK_RULES.names())
        _one_of("fill", self.fill, ("all", "schedule"))
        _one_of("mode", self.mode, ("replace", "remask", "remdm"))
        _one_of("reveal", self.reveal, ("confidence", "random", "margin", "sampled", "joint"))
        _one_of("y_tilde", self.y_tilde, ("current", "argmax"))
        _one_of("margin", self.margin, ("top2", "current"))
        if not 0.0 <= self.delta <= 1.0:
            raise ArdmError(f"gate: delta must be in [0, 1] so every position matures by step K, "
                            f"got {self.delta}")
        if not self.alpha > 0:
            raise ArdmError(f"gate: alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.theta < 1.0:
            raise ArdmError(f"gate: theta must be in [0, 1), got {self.theta}")
        if not 0.0 <= self.eta <= 1.0:
            raise ArdmError(f"gate: eta must be in [0, 1], got {self.eta}")
        if self.budget < 0 or self.cap < 0:
            raise ArdmError(f"gate: budget and cap must be >= 0, got {self.budget}, {self.cap}")
