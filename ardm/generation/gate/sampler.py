"""The Dynamic Overwrite Gate sampler ([S0] §2.5, SPEC §6.8); its pure pieces live in `scoring`."""

from __future__ import annotations

import torch

from ardm.errors import ArdmError
from ardm.generation.gate.options import MASK_RULES, GateOptions
from ardm.generation.gate.probability import GateProbability, overwrite_probability
from ardm.generation.gate.scoring import GateScorer, LinearGate, NoGate, SignalStats
from ardm.generation.samplers.base import Sampler, StepState, WriteSet, sample_from, top_n_mask
from ardm.generation.samplers.masked import margin
from ardm.generation.samplers.remdm import remask_cap
from ardm.generation.token_sampling import filter_logits, gumbel


class GateSampler(Sampler):
    """Each step: p = overwrite_probability(...) (signals -> frozen normalisation -> u = scorer;
    r = maturity prior; p = combine(u, r)); p = 1 at MASKs (fill="all") and 0 at the prompt;
    m ~ Bernoulli(p) | p > theta | top-budget(p); new ids ~ q (fp64 Gumbel) or argmax;
    x = where(m, new (replace) or MASK (remask), x). fill="schedule": the gate acts on visible
    tokens only and ceil(#MASK/(K - k + 1)) MASKs are revealed per step (the LLaDA count rule,
    recomputed from the current MASKs so remasking is absorbed), highest q(new) first or at random.
    mode="remdm" (SPEC §11.2): ReMDM's remask budget sigma_t #visible, sigma_t = min(eta, sigma_max),
    sigma_max = min(1, (1 - alpha_s)/alpha_t), is spread over the visible tokens in proportion to p
    (each capped at sigma_max), then MASKs are revealed by count so #MASK follows the flat schedule:
    round(n s) after step k (s = 1 - k/K). Uniform p is ReMDM-cap; the gate decides where.
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

    def probability(self, s: StepState) -> GateProbability:
        assert s.logits is not None and s.hidden is not None, "the gate decides inside step()"
        k = torch.full((s.x.shape[0],), s.k, dtype=torch.long)
        return overwrite_probability(self.scorer, self.stats, self.options, x=s.x, logits=s.logits,
                                     prev_logits=s.prev_logits, hidden=s.hidden, k=k, K=s.K,
                                     mask_id=s.mask_id, prompt_len=s.prompt_len)

    def step(self, s: StepState) -> WriteSet:
        o = self.options
        g = self.probability(s)
        eligible = s.target & ~s.settled
        visible, masked = eligible & ~s.masked, eligible & s.masked
        p = torch.where(eligible, g.p.double(), 0.0)
        coin = s.uniform()
        new = sample_from(s, o.argmax)
        if o.mode == "remdm":
            pi = self.remask_probability(s.k, s.K, p, visible)
            over = visible & (coin < pi)
            n_mask = torch.round((masked.sum(1) + visible.sum(1)) * (1.0 - s.k / s.K)).long()
            n_reveal = (masked.sum(1) + over.sum(1) - n_mask).clamp(min=0)
            reveal = self._reveal(s, masked, new, n_reveal)
            values = torch.where(over, torch.full_like(new, s.mask_id), new)
            return WriteSet(reveal | over, values, gate=pi.float(), aux=self._collect(s, g.raw, visible))
        p = torch.where(masked, 1.0 if o.fill == "all" else 0.0, p)
        m = MASK_RULES[o.mask](p, coin, masked, visible, o)
        over = m & visible
        if o.cap:
            over = top_n_mask(torch.where(over, p, float("-inf")), torch.full_like(p[:, 0], o.cap))
        if o.fill == "all":
            reveal = m & masked
        else:  # count rule on the MASKs present at the start of the step
            reveal = self._reveal(s, masked, new, torch.ceil(masked.sum(1) / (s.K - s.k + 1)).long())
        values = torch.where(over, torch.full_like(new, s.mask_id), new) if o.mode == "remask" else new
        return WriteSet(reveal | over, values, gate=p.float(), aux=self._collect(s, g.raw, visible))

    def remask_probability(self, k: int, K: int, p: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """mode="remdm" at step k of K: per visible token, sigma_t #visible p_i / sum p (capped at
        sigma_max). Differentiable in p (the gate's long-horizon stage takes its log). [B, L]"""
        a_t, a_s = (k - 1) / K, k / K  # alpha = 1 - t on the flat schedule
        sigma_max = remask_cap(a_t, a_s)
        sigma = min(self.options.eta, sigma_max)
        w = torch.where(visible, p, 0.0)
        total = w.sum(1, keepdim=True)
        uniform = visible.double() / visible.sum(1, keepdim=True).clamp_min(1)
        w = torch.where(total > 0, w / total.clamp_min(1e-300), uniform)  # p = 0 everywhere: uniform
        return (sigma * visible.sum(1, keepdim=True).double() * w).clamp(max=sigma_max)

    def _reveal(self, s: StepState, masked: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Which n[b] MASKs to reveal: highest q(new) first (LLaDA's confidence), at random, the
        largest gap between q's two likeliest tokens first ("margin", Kim et al. 2025, as `llada`'s
        remasking=margin), or "sampled": drawn without replacement with probability proportional to
        q(new)^(1/T) at the run's temperature T (Gumbel-top-n on log q(new) / T, fp64): confidence
        order at T = 0, between confidence and random above it, so the temperature moves both the
        values and the order. "joint" draws the next (position, token) move from the tempered joint
        over every MASKed position and token, P(i, v) ∝ q_i(v)^(1/T): position i with probability
        ∝ Z_i = sum_v q_i(v)^(1/T) (Gumbel-top-n on log Z_i, fp64), its token from q_i^(1/T) as
        always. At T = 1 every Z_i = 1 (random order, MDLM's reveals), below 1 peaked positions go
        first (confidence order as T -> 0), above 1 flat ones: one knob, no reveal temperature of
        its own (SPEC §11.4)."""
        if self.options.reveal == "random":
            score = s.uniform()
        elif self.options.reveal == "joint" and s.sampling.temperature > 0:
            o = s.sampling
            assert s.logits is not None, "reveals are chosen inside step()"
            log_q = filter_logits(s.logits.double(), o.top_k, o.top_p).log_softmax(-1)
            score = (log_q / o.temperature).logsumexp(-1) + gumbel(s.uniform())
        elif self.options.reveal == "margin":
            score = margin(s.probs())
        else:
            score = s.probs().gather(-1, new[..., None])[..., 0]
            T = s.sampling.temperature
            if self.options.reveal == "sampled" and T > 0:
                score = score.clamp_min(1e-300).log() / T + gumbel(s.uniform())
        return top_n_mask(torch.where(masked, score, float("-inf")), n)

    def _collect(self, s: StepState, raw: torch.Tensor, visible: torch.Tensor) -> dict:
        if not self.options.collect_stats:
            return s.aux
        v = visible.double()[..., None].cpu()
        raw = raw.double().cpu()
        return {"sig_sum": s.aux["sig_sum"] + (raw * v).sum(1),
                "sig_sq": s.aux["sig_sq"] + (raw ** 2 * v).sum(1), "sig_n": s.aux["sig_n"] + v[..., 0].sum(1)}
