"""Gate training (SPEC §7, [S0] §2.6 made concrete): the denoiser FROZEN; the gate's parameters and
its normalisation statistics are learned on teacher-anchored drafts.

    drafts  (§7.2) t ~ U[0.05, 1]; mask the real text x* at rate t; run j ~ U{1..J} steps of the gate
            sampler (frozen f, current gate, no grad); keep the last logits Z^(k-1) and state x; the
            decision step k = clip(round((1 - t) K) + j, 1, K) is taken with gradients.
    loss    (§7.3) lambda_aux L_aux + lambda_step L_step + lambda_sparse L_sparse + lambda_TV L_TV
    stats   initialised from a u = 0 calibration batch, EMA-updated (momentum 0.01) during the first
            10% of steps, then frozen and stored with the gate (§6.8, §7.5)

`train_gate(checkpoint, cfg)` writes the gate folder (ardm.generation.gate.store) with metrics.jsonl inside.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ardm.core.checkpoint import atomic_folder, load_model, load_tokenizer, read_checkpoint
from ardm.data.sources import load_corpus_like
from ardm.data.tokens import BlockSampler, encode
from ardm.errors import ArdmError
from ardm.generation.gate.sampler import GateOptions, GateSampler
from ardm.generation.gate.scoring import (
    GateInputs,
    NoGate,
    SignalStats,
    combine,
    make_scorer,
    maturity_prior,
    normalise,
    signals,
)
from ardm.generation.gate.store import DEPLOY_OPTIONS, GATE_DIR, write_gate_files
from ardm.generation.samplers.base import StepState, TokenSampling

P_EPS = 1e-6  # SPEC §7.3: p clamped to [1e-6, 1 - 1e-6]
MAX_POS_WEIGHT = 10.0  # SPEC §7.3: w_i = min(#neg/#pos, 10) for y_i = 1
LEARNING_RATES = {"linear": 1e-3, "mlp": 3e-4}  # SPEC §7.5
MASKS = ("relaxed", "straight_through", "expected")
VAL_SEED = 1234  # fixed validation drafts and validation Bernoulli masks: comparable across steps


@dataclass
class GateTrainConfig:
    kind: str = "mlp"  # "mlp" (SPEC §6.8 learned) | "linear"
    steps: int = 300
    batch_size: int = 32  # SPEC §7.5
    lr: float = 0.0  # 0: 1e-3 (linear) / 3e-4 (mlp), SPEC §7.5
    weight_decay: float = 0.01  # AdamW's usual default
    seed: int = 0
    sampler_steps: int = 64  # K of the drafts (Added, untuned: train with the K you will sample with)
    rollout: int = 4  # J, SPEC §7.2
    t_min: float = 0.05  # SPEC §7.2: t ~ U[0.05, 1]
    lambda_aux: float = 1.0  # SPEC §7.3 defaults (untuned)
    lambda_step: float = 1.0
    lambda_sparse: float = 0.05
    lambda_tv: float = 0.05
    mask: str = "relaxed"  # mask in L_sparse: Gumbel-sigmoid | straight-through | "expected" (= mean p)
    tau_start: float = 1.0  # SPEC §7.4: Gumbel-sigmoid temperature annealed 1.0 -> 0.1
    tau_end: float = 0.1
    stats_warmup: float = 0.1  # SPEC §7.5: EMA statistics during the first 10% of steps
    stats_momentum: float = 0.01  # SPEC §6.8
    eval_interval: int = 50
    log_interval: int = 10
    val_batch: int = 0  # validation drafts (0: batch_size)
    sampler: dict[str, Any] = field(default_factory=dict)  # gate sampler options (DEPLOY_OPTIONS)

    def __post_init__(self) -> None:
        def check(ok: bool, msg: str) -> None:
            if not ok:
                raise ArdmError(msg)

        check(self.kind in LEARNING_RATES,
              f"gate kind must be one of {tuple(LEARNING_RATES)}, got {self.kind!r}")
        check(self.mask in MASKS, f"--mask must be one of {MASKS}, got {self.mask!r}")
        for name in ("steps", "batch_size", "sampler_steps", "rollout", "eval_interval", "log_interval"):
            v = getattr(self, name)
            check(v >= 1, f"{name.replace('_', '-')} must be >= 1, got {v}")
        check(self.val_batch >= 0, f"val-batch must be >= 0, got {self.val_batch}")
        check(self.lr >= 0 and self.weight_decay >= 0, "lr and weight decay must be >= 0")
        check(0.0 <= self.t_min < 1.0, f"t_min must be in [0, 1), got {self.t_min}")
        for name in ("lambda_aux", "lambda_step", "lambda_sparse", "lambda_tv"):
            v = getattr(self, name)
            check(math.isfinite(v) and v >= 0, f"{name.replace('_', '-')} must be >= 0, got {v}")
        check(self.tau_start > 0 and self.tau_end > 0, "Gumbel-sigmoid temperatures must be > 0")
        check(0.0 <= self.stats_warmup <= 1.0, f"stats warm-up must be in [0, 1], got {self.stats_warmup}")
        check(0.0 < self.stats_momentum <= 1.0, f"momentum must be in (0, 1], got {self.stats_momentum}")
        bad = sorted(set(self.sampler) - set(DEPLOY_OPTIONS))
        check(not bad, f"gate training takes the sampler options {', '.join(DEPLOY_OPTIONS)}; "
                       f"not {', '.join(bad)}")
        GateOptions(**self.sampler)  # validates the values

    @property
    def learning_rate(self) -> float:
        return self.lr or LEARNING_RATES[self.kind]

    @property
    def warmup_steps(self) -> int:
        """Training steps whose drafts update the normalisation statistics."""
        return math.ceil(self.stats_warmup * self.steps)

    def tau(self, step: int) -> float:
        """Gumbel-sigmoid temperature at step 1..steps, geometric from tau_start to tau_end."""
        frac = (step - 1) / max(self.steps - 1, 1)
        return self.tau_start * (self.tau_end / self.tau_start) ** frac


# ---- drafts (SPEC §7.2) ----------------------------------------------------------------------------------


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
def make_drafts(model, x_star: torch.Tensor, sampler: GateSampler, K: int, J: int, t_min: float,
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
            state = StepState(x=x[b:b + 1], k=int(k[b]), K=K, mask_id=mask_id, prompt_len=0,
                              settled=torch.zeros(1, L, dtype=torch.bool, device=device),
                              active=torch.ones(1, dtype=torch.bool, device=device),
                              changes=torch.zeros(1, L, dtype=torch.long, device=device),
                              last_change=torch.zeros(1, L, dtype=torch.long, device=device),
                              prev_logits=pb, aux={}, generators=[row_gens[b]], sampling=TokenSampling(),
                              logits=zb, hidden=hb, t=None)
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
    raw = signals(step.logits, step.prev_logits, step.x, mask_id, opts.y_tilde)
    B, L = step.x.shape
    if opts.prior:
        r = torch.stack([maturity_prior(L, int(k), K, opts.alpha, opts.delta) for k in step.k]).to(raw.device)
    else:
        r = torch.zeros(B, L, device=raw.device)
    rel = torch.arange(L, device=raw.device).float() / L
    progress = (step.k.float() / K)[:, None].to(raw.device)  # [B, 1]: rows are at different steps
    u = scorer(GateInputs(normalise(raw, stats), step.hidden, rel, progress, r))
    return combine(u, r, opts.combine).clamp(P_EPS, 1 - P_EPS), r, raw


def _mean(v: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    where = where.to(v.dtype)
    return (v * where).sum() / where.sum().clamp_min(1.0)


def step_loss(p: torch.Tensor, q_star: torch.Tensor, correct: torch.Tensor,
              eligible: torch.Tensor) -> torch.Tensor:
    """L_step = -mean_E [p q(x*) + (1 - p)[x = x*]] (SPEC §7.3): minus the expected fraction of correct
    eligible tokens after one step with m ~ Bernoulli(p), replace mode, new ~ q (exact)."""
    return -_mean(p * q_star + (1 - p) * correct.to(p.dtype), eligible)


def aux_loss(p: torch.Tensor, y: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """L_aux = mean_E w BCE(p, y), w = min(#neg/#pos, 10) on y = 1, else 1 (SPEC §7.3)."""
    pos, neg = (y & eligible).sum(), (~y & eligible).sum()
    w_pos = (neg.float() / pos.clamp_min(1).float()).clamp(max=MAX_POS_WEIGHT)
    yf = y.to(p.dtype)
    bce = -(yf * p.log() + (1 - yf) * (1 - p).log())
    return _mean(torch.where(y, w_pos, 1.0) * bce, eligible)


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
        m = relaxed_mask(p, tau, gen, cfg.mask == "straight_through")
    both = eligible & (draft.before.x != mask_id)  # Reading: L_TV where the gate decided at k-1 and k
    terms = {"aux": aux_loss(p, y, eligible), "step": step_loss(p, q_star, x == x_star, eligible),
             "sparse": _mean(m, eligible), "tv": _mean((p - p_prev).abs(), both)}
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
           "correct_before": _mean(t["correct"].float(), E).item(), "correct_after": -t["step"].item()}
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


class SignalStatsEMA:
    """Running mean/variance of the raw signals over eligible positions (SPEC §6.8: EMA with momentum
    0.01), updated for `warmup` training steps, then frozen."""

    def __init__(self, momentum: float, warmup: int):
        self.momentum, self.warmup = momentum, warmup
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None
        self.updates = 0

    @property
    def frozen(self) -> bool:
        return self.updates >= self.warmup

    def initialise(self, raw: torch.Tensor, eligible: torch.Tensor) -> None:
        """Start from one batch's moments (a u = 0 calibration batch), before any training step."""
        v = raw[eligible].double()
        if len(v):
            self.mean, self.var = v.mean(0).cpu(), v.var(0, unbiased=False).cpu()

    def update(self, raw: torch.Tensor, eligible: torch.Tensor) -> bool:
        """One training step's EMA update; False (and no change) once frozen."""
        if self.frozen:
            return False
        self.updates += 1
        v = raw[eligible].double()
        if not len(v):
            return True
        mean, var = v.mean(0).cpu(), v.var(0, unbiased=False).cpu()
        if self.mean is None:
            self.mean, self.var = mean, var
        else:
            self.mean = (1 - self.momentum) * self.mean + self.momentum * mean
            self.var = (1 - self.momentum) * self.var + self.momentum * var
        return True

    def stats(self) -> SignalStats:
        if self.mean is None:
            return SignalStats()
        return SignalStats(tuple(self.mean.tolist()), tuple(self.var.tolist()))


# ---- the training run ----------------------------------------------------------------------------------


def _val_windows(ids: torch.Tensor, n: int, count: int) -> torch.Tensor:
    if ids.numel() < n:
        raise ArdmError(f"validation split has {ids.numel()} tokens, fewer than one window of {n}")
    starts = torch.linspace(0, ids.numel() - n, count).long()
    return torch.stack([ids[s:s + n] for s in starts.tolist()])


def train_gate(checkpoint: str | Path, cfg: GateTrainConfig | None = None, *, out: str | Path | None = None,
               data: str | None = None, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Train a gate for a frozen bidirectional denoiser; write it (atomically) to `out`
    (default: the `gate/` folder inside the checkpoint folder). Returns a summary dict."""
    from tqdm import tqdm

    from ardm.core.runtime import MetricsLog, resolve_device

    cfg = cfg or GateTrainConfig()
    start = time.perf_counter()
    ckpt = read_checkpoint(checkpoint)
    if ckpt.config.model.attention != "bidirectional":
        raise ArdmError(f"train-gate needs a bidirectional denoiser; {ckpt.path} is a "
                        f"{ckpt.config.model.attention} (AR) model")
    dev = resolve_device(device)
    model = load_model(ckpt, str(dev))
    model.requires_grad_(False)
    tok = load_tokenizer(ckpt)
    dcfg = ckpt.config.data
    corpus = load_corpus_like(dcfg, data)
    n = min(dcfg.seq_len, model.cfg.max_len)
    blocks = BlockSampler(encode(tok, corpus.train), n, cfg.seed)
    mask_id, K, J = model.cfg.vocab_size, cfg.sampler_steps, cfg.rollout
    opts = GateOptions(**cfg.sampler)
    torch.manual_seed(cfg.seed)
    scorer = make_scorer(cfg.kind, model.cfg.d_model).to(dev)
    gen = torch.Generator().manual_seed(cfg.seed)
    prior_only = GateSampler(opts, scorer=NoGate())
    # fixed validation drafts (u = 0 rollouts, fixed seed): every evaluation scores the same states
    val_x = _val_windows(encode(tok, corpus.val), n, cfg.val_batch or cfg.batch_size).to(dev)
    val = make_drafts(model, val_x, prior_only, K, J, cfg.t_min, torch.Generator().manual_seed(VAL_SEED))
    ema = SignalStatsEMA(cfg.stats_momentum, cfg.warmup_steps)
    calib = make_drafts(model, blocks.batch(cfg.batch_size).to(dev), prior_only, K, J, cfg.t_min, gen)
    ema.initialise(signals(calib.now.logits, calib.now.prev_logits, calib.now.x, mask_id, opts.y_tilde),
                   calib.now.x != mask_id)
    optim = torch.optim.AdamW(scorer.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    out = Path(out) if out is not None else ckpt.path / GATE_DIR
    deploy = {k: v for k, v in dataclasses.asdict(opts).items() if k in DEPLOY_OPTIONS}
    with atomic_folder(out) as tmp:
        log = MetricsLog(tmp / "metrics.jsonl", True)
        initial = validation_metrics(scorer, ema.stats(), val, K, mask_id, opts, cfg)
        log.write({"step": 0, "split": "val", **initial})
        final, frozen_at = initial, 0 if ema.frozen else None
        bar = tqdm(range(1, cfg.steps + 1), desc=f"train-gate {cfg.kind}", disable=not progress,
                   dynamic_ncols=True)
        for step in bar:
            scorer.eval()
            draft = make_drafts(model, blocks.batch(cfg.batch_size).to(dev),
                                GateSampler(opts, scorer=scorer, stats=ema.stats()), K, J, cfg.t_min, gen)
            now = draft.now
            ema.update(signals(now.logits, now.prev_logits, now.x, mask_id, opts.y_tilde), now.x != mask_id)
            if ema.frozen and frozen_at is None:
                frozen_at = step
            scorer.train()
            tau = cfg.tau(step)
            loss, t = gate_losses(scorer, ema.stats(), draft, K, mask_id, opts, cfg, tau, gen)
            if not math.isfinite(loss.item()):
                raise ArdmError(f"gate loss became {loss.item()} at step {step}; lower --lr")
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            if step % cfg.log_interval == 0 or step == 1:
                log.write({"step": step, "split": "train", "loss": round(loss.item(), 6),
                           **{f"L_{k}": round(t[k].item(), 6) for k in ("aux", "step", "sparse", "tv")},
                           "mean_p": round(_mean(t["p"], t["eligible"]).item(), 6), "tau": round(tau, 4),
                           "lr": cfg.learning_rate, "elapsed_s": round(time.perf_counter() - start, 2)})
            if step % cfg.eval_interval == 0 or step == cfg.steps:
                final = validation_metrics(scorer, ema.stats(), val, K, mask_id, opts, cfg)
                log.write({"step": step, "split": "val", **final})
                bar.set_postfix(val_L_step=f"{final['L_step']:.4f}", val_L_aux=f"{final['L_aux']:.4f}")
        scorer.eval()
        with torch.no_grad():  # theta for threshold masks, on the validation drafts (SPEC §7.5)
            _, t = gate_losses(scorer, ema.stats(), val, K, mask_id, opts, cfg)
        deploy["theta"], theta_f1 = select_theta(t["p"], t["y"], t["eligible"])
        elapsed = round(time.perf_counter() - start, 2)
        training = {**dataclasses.asdict(cfg), "lr": cfg.learning_rate, "data": corpus.source,
                    "data_sha256": corpus.sha256, "seq_len": n, "device": str(dev),
                    "stats_frozen_at_step": frozen_at, "elapsed_s": elapsed,
                    "theta_selected": {"theta": deploy["theta"], "f1": theta_f1, "grid": list(THETA_GRID)}}
        write_gate_files(tmp, scorer, ema.stats(), deploy, ckpt, training,
                         {"initial": initial, "final": final})
    return {"out": str(out), "kind": cfg.kind, "steps": cfg.steps, "elapsed_s": elapsed,
            "stats_frozen_at_step": frozen_at, "initial": initial, "final": final}
