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
import os
import shutil
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
    Draft,
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
    ema.update(signals(now.logits, now.prev_logits, now.x, mask_id, opts.y_tilde, opts.margin),
               now.x != mask_id)
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


PARTIAL_SUFFIX = ".partial"  # OUT.partial/ holds a gate run in progress: state.pt + metrics.jsonl
STATE_FILE = "state.pt"


@dataclass
class _GateRun:
    """Everything one gate-training run holds (set up identically on a fresh start and on --resume)."""

    cfg: GateTrainConfig
    ckpt: Any
    corpus: Any
    model: Any
    blocks: BlockSampler
    opts: GateOptions
    scorer: Any
    optim: torch.optim.Optimizer
    ema: SignalStatsEMA
    gen: torch.Generator
    val: Draft
    device: torch.device
    seq_len: int


def _setup(checkpoint: str | Path, cfg: GateTrainConfig, data: str | None, device: str) -> _GateRun:
    from ardm.core.runtime import resolve_device

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
    ema.initialise(signals(calib.now.logits, calib.now.prev_logits, calib.now.x, mask_id, opts.y_tilde,
                           opts.margin), calib.now.x != mask_id)
    optim = torch.optim.AdamW(scorer.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return _GateRun(cfg, ckpt, corpus, model, blocks, opts, scorer, optim, ema, gen, val, dev, n)


def _save_state(work: Path, run: _GateRun, step: int, progress: dict[str, Any]) -> None:
    """Everything --resume needs to continue exactly, written atomically (tmp file + rename)."""
    state = {"config": dataclasses.asdict(run.cfg), "step": step, "scorer": run.scorer.state_dict(),
             "optim": run.optim.state_dict(), "ema": [run.ema.mean, run.ema.var, run.ema.updates],
             "gen": run.gen.get_state(), "blocks": run.blocks.generator.get_state(), "progress": progress}
    tmp = work / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, work / STATE_FILE)


def _restore_state(work: Path, run: _GateRun) -> tuple[int, dict[str, Any]]:
    path = work / STATE_FILE
    if not path.exists():
        raise ArdmError(f"--resume: no gate run in progress in {work} (expected {path})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ArdmError(f"--resume: cannot read {path} ({e})") from None
    if state["config"] != dataclasses.asdict(run.cfg):
        raise ArdmError(f"--resume: the gate run in {work} was started with other options")
    run.scorer.load_state_dict(state["scorer"])
    run.optim.load_state_dict(state["optim"])
    run.ema.mean, run.ema.var, run.ema.updates = state["ema"]
    run.gen.set_state(state["gen"])
    run.blocks.generator.set_state(state["blocks"])
    return state["step"], state["progress"]


def train_gate(checkpoint: str | Path, cfg: GateTrainConfig | None = None, *, out: str | Path | None = None,
               data: str | None = None, device: str = "cpu", progress: bool = True,
               resume: bool = False) -> dict[str, Any]:
    """Train a gate for a frozen bidirectional denoiser; write it (atomically) to `out` (default: the
    `gate/` folder inside the checkpoint folder). While it trains, OUT.partial/ holds its state at
    every validation, so an interrupted run continues exactly with `resume=True`. Returns a summary."""
    from tqdm import tqdm

    from ardm.core.runtime import MetricsLog

    cfg = cfg or GateTrainConfig()
    start = time.perf_counter()
    run = _setup(checkpoint, cfg, data, device)
    mask_id, K = run.model.cfg.vocab_size, cfg.sampler_steps
    out = Path(out) if out is not None else run.ckpt.path / GATE_DIR
    work = out.with_name(out.name + PARTIAL_SUFFIX)
    if resume:
        first, prog = _restore_state(work, run)
    elif work.exists():
        raise ArdmError(f"a gate run is already in progress in {work}: pass --resume to continue it "
                        "or remove that folder")
    else:
        work.mkdir(parents=True)
        initial = validation_metrics(run.scorer, run.ema.stats(), run.val, K, mask_id, run.opts, cfg)
        first, prog = 0, {"initial": initial, "final": initial, "frozen_at": 0 if run.ema.frozen else None}
    log = MetricsLog(work / "metrics.jsonl", True)
    log.truncate_after(first)
    if first == 0:
        log.write({"step": 0, "split": "val", **prog["initial"]})
    bar = tqdm(range(first + 1, cfg.steps + 1), desc=f"train-gate {cfg.kind}", disable=not progress,
               dynamic_ncols=True, initial=first, total=cfg.steps)
    for step in bar:
        prog["frozen_at"] = _train_step(step, run.scorer, run.optim, run.ema, run.model, run.blocks, run.opts,
                                        cfg, log, run.gen, start, prog["frozen_at"])
        if step % cfg.eval_interval == 0 or step == cfg.steps:
            prog["final"] = validation_metrics(run.scorer, run.ema.stats(), run.val, K, mask_id, run.opts,
                                               cfg)
            log.write({"step": step, "split": "val", **prog["final"]})
            bar.set_postfix(val_precision=f"{prog['final']['precision']:.3f}",
                            val_recall=f"{prog['final']['recall']:.3f}")
            _save_state(work, run, step, prog)
    return _finish(run, out, work, prog, round(time.perf_counter() - start, 2))


def _finish(run: _GateRun, out: Path, work: Path, prog: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """Choose theta, write the gate folder atomically, and drop the run's partial state."""
    cfg, K, mask_id = run.cfg, run.cfg.sampler_steps, run.model.cfg.vocab_size
    deploy = {k: v for k, v in dataclasses.asdict(run.opts).items() if k in DEPLOY_OPTIONS}
    run.scorer.eval()
    with torch.no_grad():  # theta for threshold masks, on the validation drafts (SPEC §7.5)
        _, t = gate_losses(run.scorer, run.ema.stats(), run.val, K, mask_id, run.opts, cfg)
    deploy["theta"], theta_f1 = select_theta(t["p"], t["y"], t["eligible"])
    training = {**dataclasses.asdict(cfg), "lr": cfg.learning_rate, "data": run.corpus.source,
                "data_sha256": run.corpus.sha256, "seq_len": run.seq_len, "device": str(run.device),
                "stats_frozen_at_step": prog["frozen_at"], "elapsed_s": elapsed,
                "theta_selected": {"theta": deploy["theta"], "f1": theta_f1, "grid": list(THETA_GRID)}}
    metrics = {"initial": prog["initial"], "final": prog["final"]}
    with atomic_folder(out) as tmp:
        shutil.copyfile(work / "metrics.jsonl", tmp / "metrics.jsonl")
        write_gate_files(tmp, run.scorer, run.ema.stats(), deploy, run.ckpt, training, metrics)
    shutil.rmtree(work, ignore_errors=True)
    return {"out": str(out), "kind": cfg.kind, "steps": cfg.steps, "elapsed_s": elapsed,
            "stats_frozen_at_step": prog["frozen_at"], **metrics}
