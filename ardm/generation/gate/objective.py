"""The gate's training objective on drafts (SPEC §7.2-7.3): rollouts of the frozen denoiser with the
current gate, the gate's probabilities with gradients at the decision step, and the loss terms
(L_aux, L_step, L_sparse, L_TV), validation metrics and the threshold choice for threshold masks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ardm.core.denoiser import Denoiser
from ardm.generation.gate.options import GateOptions
from ardm.generation.gate.probability import overwrite_probability
from ardm.generation.gate.sampler import GateSampler
from ardm.generation.gate.scoring import (
    SignalStats,
)
from ardm.generation.samplers.base import StepState

if TYPE_CHECKING:
    from ardm.generation.gate.training import GateTrainConfig

P_EPS = 1e-6  # SPEC §7.3: p clamped to [1e-6, 1 - 1e-6]
MAX_POS_WEIGHT = 10.0  # SPEC §7.3: w_i = min(#neg/#pos, 10) for y_i = 1
VAL_SEED = 1234  # fixed validation drafts and validation Bernoulli masks: comparable across steps


@dataclass
class GateStep:
    """What the gate sees at one step of a draft (no-grad tensors)."""

    x: torch.Tensor  # [B, L] the state the gate decides on
    logits: torch.Tensor  # [B, L, V] f(x)
    hidden: torch.Tensor  # [B, L, d]
    prev_logits: torch.Tensor  # [B, L, V] the previous step's logits (= logits where there is none: Dl = 0)
    k: torch.Tensor  # [B] long, step index 1..K


@dataclass
class Draft:
    x_star: torch.Tensor  # [B, L] the real text
    now: GateStep  # the decision step k
    before: GateStep  # the last rollout step k - 1 (for L_TV)


def _levels(k: torch.Tensor, K: int, L: int) -> torch.Tensor:
    """The gate sampler's flat levels 1 - (k - 1)/K (Sampler.levels), one k per row. [B, L]"""
    return (1.0 - (k.double() - 1) / K).float()[:, None].expand(-1, L)


@torch.no_grad()
def make_drafts(model: Denoiser, x_star: torch.Tensor, sampler: GateSampler, K: int, J: int, t_min: float,
                gen: torch.Generator) -> Draft:
    """Teacher-anchored drafts (SPEC §7.2). Row b: t_b ~ U[t_min, 1]; x* masked at rate t_b;
    j_b ~ U{1..J} gate-sampler steps k_b - j_b .. k_b - 1 (clipped to >= 1) from that state, then the
    decision step k_b = clip(round((1 - t_b) K) + j_b, 1, K). Rows share forward passes; each row's
    draws come from its own generator, so rows are independent."""
    device = x_star.device
    B, L = x_star.shape
    mask_id = model.cfg.vocab_size
    t = t_min + (1 - t_min) * torch.rand(B, generator=gen, dtype=torch.float64)
    x = torch.where(torch.rand(B, L, generator=gen) < t[:, None].float(), mask_id, x_star.cpu()).to(device)
    j = torch.randint(1, J + 1, (B,), generator=gen)
    k_dec = (((1 - t) * K).round().long() + j).clamp(1, K)
    row_gens = [torch.Generator().manual_seed(int(s)) for s in torch.randint(0, 2 ** 62, (B,), generator=gen)]
    before: list[GateStep | None] = [None] * B
    prev = None
    for s in range(1, J + 1):
        live = (j >= s).nonzero().flatten().tolist()
        k = (k_dec - j + s - 1).clamp(1, K)
        logits, hidden = model(x[live], _levels(k[live], K, L).to(device))
        new_prev = torch.zeros(B, L, logits.shape[-1], device=device) if prev is None else prev.clone()
        for row, b in enumerate(live):
            zb, hb = logits[row:row + 1], hidden[row:row + 1]
            pb = None if prev is None else prev[b:b + 1]
            if s == j[b]:
                before[b] = GateStep(x[b:b + 1].clone(), zb, hb, zb if pb is None else pb, k[b:b + 1])
            state = StepState.begin(x[b:b + 1], k=int(k[b]), K=K, mask_id=mask_id, generators=[row_gens[b]])
            state = dataclasses.replace(state, prev_logits=pb, logits=zb, hidden=hb)
            state = dataclasses.replace(state, aux=sampler.init(state))
            w = sampler.step(state)
            x[b] = torch.where(w.positions[0], w.values[0], x[b])
            new_prev[b] = zb[0]
        prev = new_prev
    logits, hidden = model(x, _levels(k_dec, K, L).to(device))
    prior = GateStep(*(torch.cat([getattr(st, f) for st in before]) for f in ("x", "logits", "hidden",
                                                                              "prev_logits", "k")))
    now = GateStep(x, logits, hidden, prior.logits, k_dec.to(device))
    return Draft(x_star, now, prior)


# ---- the gate with gradients ----------------------------------------------------------------------------


def gate_probabilities(scorer, stats: SignalStats, step: GateStep, K: int, mask_id: int,
                       opts: GateOptions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """p = combine(u, r) of the gate sampler (SPEC §6.8) at each row's own step k, with gradients into
    the scorer; clamped to [1e-6, 1 - 1e-6] (§7.3). Returns p, r [B, L] and the raw signals [B, L, 3]."""
    g = overwrite_probability(scorer, stats, opts, x=step.x, logits=step.logits, prev_logits=step.prev_logits,
                              hidden=step.hidden, k=step.k, K=K, mask_id=mask_id)
    return g.p.clamp(P_EPS, 1 - P_EPS), g.prior, g.raw


def masked_mean(v: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    where = where.to(v.dtype)
    return (v * where).sum() / where.sum().clamp_min(1.0)


def step_loss(p: torch.Tensor, q_star: torch.Tensor, correct: torch.Tensor,
              eligible: torch.Tensor) -> torch.Tensor:
    """L_step = -mean_E [p q(x*) + (1 - p)[x = x*]] (SPEC §7.3): minus the expected fraction of correct
    eligible tokens after one step with m ~ Bernoulli(p), replace mode, new ~ q (exact)."""
    return -masked_mean(p * q_star + (1 - p) * correct.to(p.dtype), eligible)


def aux_loss(p: torch.Tensor, y: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """L_aux = mean_E w BCE(p, y), w = min(#neg/#pos, 10) on y = 1, else 1 (SPEC §7.3)."""
    pos, neg = (y & eligible).sum(), (~y & eligible).sum()
    w_pos = (neg.float() / pos.clamp_min(1).float()).clamp(max=MAX_POS_WEIGHT)
    yf = y.to(p.dtype)
    bce = -(yf * p.log() + (1 - yf) * (1 - p).log())
    return masked_mean(torch.where(y, w_pos, 1.0) * bce, eligible)


def relaxed_mask(p: torch.Tensor, tau: float, gen: torch.Generator, straight_through: bool) -> torch.Tensor:
    """Gumbel-sigmoid m~ = sigmoid((logit p + g - g')/tau) (SPEC §7.4; g - g' ~ Logistic); straight-through:
    [m~ > 0.5] forward, the gradient of m~ backward."""
    u = torch.rand(p.shape, generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    logistic = (u.log() - (-u).log1p()).to(p)
    soft = torch.sigmoid((p.logit() + logistic) / tau)
    return (soft > 0.5).to(p) + soft - soft.detach() if straight_through else soft


def gate_losses(scorer, stats: SignalStats, draft: Draft, K: int, mask_id: int, opts: GateOptions,
                cfg: GateTrainConfig, tau: float | None = None, gen: torch.Generator | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The SPEC §7.3 loss at the decision step. E = visible positions (the gate's decisions; MASKs are
    filled by the fill rule). tau/gen None: L_sparse = mean p (the expectation, as in validation)."""
    p, r, _ = gate_probabilities(scorer, stats, draft.now, K, mask_id, opts)
    p_prev, _, _ = gate_probabilities(scorer, stats, draft.before, K, mask_id, opts)
    x, x_star = draft.now.x, draft.x_star
    eligible = x != mask_id
    y = (x != x_star) & eligible
    q_star = draft.now.logits.float().softmax(-1).gather(-1, x_star[..., None])[..., 0]
    if tau is None or cfg.mask == "expected":
        m = p
    else:
        assert gen is not None, "a relaxed mask needs a generator"
        m = relaxed_mask(p, tau, gen, cfg.mask == "straight_through")
    both = eligible & (draft.before.x != mask_id)  # Reading: L_TV where the gate decided at k-1 and k
    terms = {"aux": aux_loss(p, y, eligible), "step": step_loss(p, q_star, x == x_star, eligible),
             "sparse": masked_mean(m, eligible), "tv": masked_mean((p - p_prev).abs(), both)}
    loss = (cfg.lambda_aux * terms["aux"] + cfg.lambda_step * terms["step"]
            + cfg.lambda_sparse * terms["sparse"] + cfg.lambda_tv * terms["tv"])
    extras = {"p": p, "r": r, "y": y, "eligible": eligible, "correct": x == x_star}
    return loss, {**terms, **extras}


@torch.no_grad()
def validation_metrics(scorer, stats: SignalStats, draft: Draft, K: int, mask_id: int, opts: GateOptions,
                       cfg: GateTrainConfig) -> dict[str, float]:
    """Loss terms (L_sparse = mean p), mean p, overwrite rate and precision/recall of m ~ Bernoulli(p)
    (fixed draws) against y, and L_aux on r < 0.5 (SPEC §7.3: -log(1 - r) inflates it elsewhere)."""
    loss, t = gate_losses(scorer, stats, draft, K, mask_id, opts, cfg)
    E, y, p = t["eligible"], t["y"], t["p"]
    coin = torch.rand(p.shape, generator=torch.Generator().manual_seed(VAL_SEED), dtype=torch.float64)
    m = (coin.to(p.device) < p.double()) & E
    hits = (m & y).sum().item()
    late = E & (t["r"] < 0.5)
    out = {"loss": loss.item(), "L_aux": t["aux"].item(), "L_aux_r_lt_half": aux_loss(p, y, late).item(),
           "L_step": t["step"].item(), "L_sparse": t["sparse"].item(), "L_tv": t["tv"].item(),
           "mean_p": t["sparse"].item(), "overwrite_rate": m.sum().item() / max(E.sum().item(), 1),
           "precision": hits / max(m.sum().item(), 1), "recall": hits / max(y.sum().item(), 1),
           "wrong_rate": y.sum().item() / max(E.sum().item(), 1),
           "correct_before": masked_mean(t["correct"].float(), E).item(), "correct_after": -t["step"].item()}
    return {k: round(v, 6) for k, v in out.items()}


THETA_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95


def select_theta(p: torch.Tensor, y: torch.Tensor, eligible: torch.Tensor) -> tuple[float, float]:
    """SPEC §7.5: the threshold theta (for mask="threshold", m = p > theta) that maximises the F1 of m
    against y = "the current token is wrong" over eligible positions; ties go to the larger theta
    (fewer overwrites). Returns (theta, F1)."""
    p, y = p[eligible].double(), y[eligible]
    best = (THETA_GRID[-1], -1.0)
    for theta in THETA_GRID:
        m = p > theta
        hits = (m & y).sum().item()
        f1 = 2 * hits / max(m.sum().item() + y.sum().item(), 1)
        if f1 >= best[1]:
            best = (theta, f1)
    return best[0], round(best[1], 6)


# ---- normalisation statistics ------------------------------------------------------------------------
