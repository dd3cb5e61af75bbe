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
from ardm.generation.gate.objective import (
    THETA_GRID,
    VAL_SEED,
    gate_losses,
    make_drafts,
    masked_mean,
    select_theta,
    validation_metrics,
)
from ardm.generation.gate.options import GateOptions
from ardm.generation.gate.sampler import GateSampler
from ardm.generation.gate.scoring import (
    NoGate,
    SignalStats,
    make_scorer,
    signals,
)
from ardm.generation.gate.store import DEPLOY_OPTIONS, GATE_DIR, write_gate_files

LEARNING_RATES = {"linear": 1e-3, "mlp": 3e-4}  # SPEC §7.5
MASKS = ("relaxed", "straight_through", "expected")


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
        if self.mean is None or self.var is None:
            self.mean, self.var = mean, var
        else:
            self.mean = (1 - self.momentum) * self.mean + self.momentum * mean
            self.var = (1 - self.momentum) * self.var + self.momentum * var
        return True

    def stats(self) -> SignalStats:
        if self.mean is None or self.var is None:
            return SignalStats()
        return SignalStats(tuple(self.mean.tolist()), tuple(self.var.tolist()))


# ---- the training run ----------------------------------------------------------------------------------


def _val_windows(ids: torch.Tensor, n: int, count: int) -> torch.Tensor:
    if ids.numel() < n:
        raise ArdmError(f"validation split has {ids.numel()} tokens, fewer than one window of {n}")
    starts = torch.linspace(0, ids.numel() - n, count).long()
    return torch.stack([ids[s:s + n] for s in starts.tolist()])


def _train_step(step: int, scorer, optim, ema: SignalStatsEMA, model, blocks: BlockSampler,
                opts: GateOptions, cfg: GateTrainConfig, log, gen: torch.Generator, start: float,
                frozen_at: int | None) -> int | None:
    """One gate update: fresh on-policy drafts, the statistics' EMA, the loss and an AdamW step.
    Returns the step at which the statistics froze (None while they still move)."""
    mask_id, K, J = model.cfg.vocab_size, cfg.sampler_steps, cfg.rollout
    dev = next(model.parameters()).device
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
                   "mean_p": round(masked_mean(t["p"], t["eligible"]).item(), 6), "tau": round(tau, 4),
                   "lr": cfg.learning_rate, "elapsed_s": round(time.perf_counter() - start, 2)})
    return frozen_at


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
            frozen_at = _train_step(step, scorer, optim, ema, model, blocks, opts, cfg, log, gen, start,
                                    frozen_at)
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
