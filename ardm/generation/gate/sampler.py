"""The Dynamic Overwrite Gate sampler ([S0] §2.5, SPEC §6.8); its pure pieces live in `scoring`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ardm.core.registry import Registry
from ardm.errors import ArdmError
from ardm.generation.gate.scoring import (
    COMBINERS,
    GateInputs,
    GateScorer,
    LinearGate,
    NoGate,
    SignalStats,
    combine,
    maturity_prior,
    normalise,
    signals,
)
from ardm.generation.samplers.base import Sampler, StepState, WriteSet, sample_from, top_n_mask

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
    fill: str = "all"  # "all": MASKs get p = 1 | "schedule": a count rule reveals MASKs
    mode: str = "replace"  # "replace" (T2T) | "remask" (T2M)
    y_tilde: str = "current"  # token whose confidence change Dl measures: "current" | "argmax"
    argmax: bool = False  # new ids by argmax instead of a draw at the run's temperature
    stats_file: str = ""  # JSON {"mean": [3], "var": [3]} (gate training or calibrate()); "" = 0/1
    collect_stats: bool = False  # accumulate raw signal sums in aux (for calibrate())

    def __post_init__(self) -> None:
        _one_of("gate", self.gate, ("linear", "none", "learned"))
        _one_of("combine", self.combine, COMBINERS.names())
        _one_of("mask", self.mask, MASK_RULES.names())
        _one_of("fill", self.fill, ("all", "schedule"))
        _one_of("mode", self.mode, ("replace", "remask"))
        _one_of("y_tilde", self.y_tilde, ("current", "argmax"))
        if not 0.0 <= self.delta <= 1.0:
            raise ArdmError(f"gate: delta must be in [0, 1] so every position matures by step K, "
                            f"got {self.delta}")
        if not self.alpha > 0:
            raise ArdmError(f"gate: alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.theta < 1.0:
            raise ArdmError(f"gate: theta must be in [0, 1), got {self.theta}")
        if self.budget < 0 or self.cap < 0:
            raise ArdmError(f"gate: budget and cap must be >= 0, got {self.budget}, {self.cap}")


class GateSampler(Sampler):
    """Each step: signals (H, M, Dl) -> normalised with frozen stats -> u = scorer(...);
    r = maturity prior; p = combine(u, r); p = 1 at MASKs (fill="all") and 0 at the prompt;
    m ~ Bernoulli(p) | p > theta | top-budget(p); new ids ~ q (fp64 Gumbel) or argmax;
    x = where(m, new (replace) or MASK (remask), x). fill="schedule": the gate acts on visible
    tokens only and ceil(#MASK/(K - k + 1)) MASKs are revealed per step, highest q(new) first
    (the LLaDA count rule, recomputed from the current MASKs so remasking is absorbed).
    Reading: `budget` and `cap` count overwrites of visible tokens only (MASK fills are free).
    Positions are never settled (any may be revised), except the prompt. Any K >= 1."""

    name = "gate"
    Options = GateOptions

    def __init__(self, options: GateOptions | None = None, *, scorer: GateScorer | None = None,
                 stats: SignalStats | None = None, **kwargs):
        super().__init__(options, **kwargs)
        o = self.options
        if o.gate == "learned" and scorer is None:
            raise ArdmError("gate: gate='learned' needs a trained gate (ardm.generation.gate.store."
                            "load_gate, or `ardm sample` with a gate trained by `ardm train-gate` "
                            "beside the checkpoint)")
        self.scorer = scorer or (NoGate() if o.gate == "none" else LinearGate(o.b0, o.b_h, o.b_m, o.b_d))
        self.stats = stats or (SignalStats.load(o.stats_file) if o.stats_file else SignalStats())

    def init(self, s: StepState) -> dict:
        B = s.x.shape[0]
        zeros = torch.zeros(B, 3, dtype=torch.float64)
        return {"sig_sum": zeros, "sig_sq": zeros, "sig_n": zeros[:, 0]}

    def prior(self, s: StepState) -> torch.Tensor:
        r = torch.zeros(s.x.shape, device=s.x.device)
        if self.options.prior:
            r[:, s.prompt_len:] = maturity_prior(s.n, s.k, s.K, self.options.alpha, self.options.delta)
        return r

    def step(self, s: StepState) -> WriteSet:
        o = self.options
        assert s.logits is not None and s.hidden is not None
        raw = signals(s.logits, s.prev_logits, s.x, s.mask_id, o.y_tilde)  # [B, L, 3]
        r = self.prior(s)
        u = self.scorer(GateInputs(normalise(raw, self.stats), s.hidden, s.position.float() / s.n,
                                   s.k / s.K, r))
        eligible = s.target & ~s.settled
        visible, masked = eligible & ~s.masked, eligible & s.masked
        p = combine(u, r, o.combine).double()
        p = torch.where(masked, 1.0 if o.fill == "all" else 0.0, p)
        p = torch.where(eligible, p, 0.0)
        coin = s.uniform()
        new = sample_from(s, o.argmax)
        m = MASK_RULES[o.mask](p, coin, masked, visible, o)
        over = m & visible
        if o.cap:
            over = top_n_mask(torch.where(over, p, float("-inf")), torch.full_like(p[:, 0], o.cap))
        if o.fill == "all":
            reveal = m & masked
        else:  # count rule on the MASKs present at the start of the step
            n_reveal = torch.ceil(masked.sum(1) / (s.K - s.k + 1)).long()
            q_new = s.probs().gather(-1, new[..., None])[..., 0]
            reveal = top_n_mask(torch.where(masked, q_new, float("-inf")), n_reveal)
        values = torch.where(over, torch.full_like(new, s.mask_id), new) if o.mode == "remask" else new
        return WriteSet(reveal | over, values, gate=p.float(), aux=self._collect(s, raw, visible))

    def _collect(self, s: StepState, raw: torch.Tensor, visible: torch.Tensor) -> dict:
        if not self.options.collect_stats:
            return s.aux
        v = visible.double()[..., None].cpu()
        raw = raw.double().cpu()
        return {"sig_sum": s.aux["sig_sum"] + (raw * v).sum(1),
                "sig_sq": s.aux["sig_sq"] + (raw ** 2 * v).sum(1), "sig_n": s.aux["sig_n"] + v[..., 0].sum(1)}
