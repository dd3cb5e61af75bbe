"""The training loop: `train(cfg, out_dir)`, for diffusion and causal objectives (nanoGPT's shape).

    run = setup(...); restore(run, ...)
    while step < max_steps:
        lr -> train_step -> log -> validate every eval_interval -> save every ckpt_interval
    validate; save

AdamW + linear warmup + cosine decay, gradient clipping, gradient accumulation, EMA weights,
optional bf16 autocast, periodic validation, JSON-lines metrics, atomic checkpoints, exact resume,
Ctrl-C = save and stop. Under `torchrun --nproc_per_node N` it runs DDP (gloo on CPU, NCCL on
GPU); each rank draws its own data windows, rank 0 alone writes checkpoints and logs.

Time budgets: with train.max_minutes > 0 the run stops on wall time and the learning-rate schedule
follows elapsed time instead of steps (so a 30-minute run anneals fully). Such runs are not
bit-reproducible across machines; use max_steps for that.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ardm.core.config import RunConfig, TrainConfig
from ardm.core.objectives import ArmdObjective
from ardm.core.runtime import MetricsLog, resolve_device
from ardm.errors import ArdmError
from ardm.evaluation.likelihood import LN2, absorbing_nelbo
from ardm.training.adaptation import set_annealed_attention
from ardm.training.distributed import Distributed, param_digest
from ardm.training.run import Run, agree_on_run_dir, restore, save, setup, starting_tokenizer

METRICS_FILE = "metrics.jsonl"


def lr_at(progress: float, step: int, cfg: TrainConfig) -> float:
    """Linear warmup over warmup_steps, then cosine from lr to min_lr as progress goes 0 -> 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * p))


@torch.no_grad()
def validate(model, objective, val_ids: torch.Tensor, cfg: RunConfig, device,
             val_clean: torch.Tensor | None = None) -> dict[str, float]:
    """Validation on fixed windows with a fixed noise seed: comparable across steps and resumes."""
    model.eval()
    n = objective.example_len
    count = min(cfg.train.eval_batches * cfg.train.batch_size, max(1, val_ids.numel() // n))
    starts = torch.linspace(0, val_ids.numel() - n, count).long()
    if cfg.data.record_len:  # whole records only
        starts = starts // cfg.data.record_len * cfg.data.record_len
    idx = starts[:, None] + torch.arange(n)
    x_all = val_ids[idx]
    chunks = x_all.split(cfg.train.batch_size)
    givens = [None] * len(chunks) if val_clean is None else val_clean[idx].split(cfg.train.batch_size)
    gen = torch.Generator().manual_seed(1234)
    losses, elbo = [], []
    for chunk, given in zip(chunks, givens):
        x = chunk.to(device)
        loss, _ = objective.loss(model, x, gen, given)
        losses.append(loss.item() * len(chunk))
        # (a seq2seq source must not be noised; ARMD and AR models report their exact NLL elsewhere)
        if model.cfg.attention in ("bidirectional", "block_causal") and not cfg.data.prefix_len:
            elbo.append(absorbing_nelbo(model, x, 1, gen).sum().item())
    out = {"val_loss": sum(losses) / len(x_all)}
    if elbo:
        out["val_elbo_bits_per_token"] = sum(elbo) / (len(x_all) * n) / LN2
    else:
        out["val_bits_per_token"] = out["val_loss"] / LN2
    model.train()
    return out


def train_step(run: Run, net: torch.nn.Module, lr: float, autocast) -> tuple[float, dict, torch.Tensor]:
    """One optimizer step over grad_accum micro-batches, then the EMA update: (loss, stats, grad norm)."""
    tc = run.cfg.train
    for g in run.opt.param_groups:
        g["lr"] = lr
    if tc.attn_anneal_steps:  # adaptation: causal -> bidirectional attention (SPEC §11.5)
        set_annealed_attention(run.model, run.step, tc.attn_anneal_steps, run.objective.example_len, tc.seed)
    loss_sum, stats = 0.0, {}
    for micro in range(tc.grad_accum):
        x, given = run.sampler.batch_with_clean(tc.batch_size, run.objective.example_len)
        x = x.to(run.device, non_blocking=True)
        sync = run.ddp.enabled and micro < tc.grad_accum - 1
        no_sync = net.no_sync() if sync else contextlib.nullcontext()  # type: ignore[operator]
        with no_sync, autocast:
            loss, stats = run.objective.loss(net, x, run.noise_gen, given)
        (loss / tc.grad_accum).backward()
        loss_sum += loss.item() / tc.grad_accum
    if not math.isfinite(loss_sum):
        raise ArdmError(f"loss became {loss_sum} at step {run.step}; lower train.lr or check the data")
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.grad_clip or float("inf"))
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    run.step += 1
    if run.ema is not None:  # warm-started EMA so early checkpoints are not stuck at init
        d = min(tc.ema_decay, (1 + run.step) / (10 + run.step))
        with torch.no_grad():
            for pe, pm in zip(run.ema.parameters(), run.model.parameters()):
                pe.lerp_(pm, 1 - d)
    return loss_sum, stats, grad_norm


def _validate_and_log(run: Run, log: MetricsLog) -> dict[str, Any]:
    metrics = validate(run.eval_model, run.objective, run.val_ids, run.cfg, run.device, run.val_clean)
    log.write({"step": run.step, "split": "val", **metrics, "elapsed_s": round(run.elapsed, 2)})
    return metrics


def train(cfg: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False, progress: bool = True,
          stop_after: int | None = None, init_from: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train and checkpoint into `out_dir`. `stop_after` (tests) stops as if interrupted at that step.
    `init_from` starts a new run from another checkpoint's weights (fine-tuning; optimizer, schedule and
    step start afresh); it must have the same model config, and the run keeps its tokenizer."""
    out = Path(out_dir)
    ddp = Distributed(resolve_device(cfg.train.device))
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        tok_json, state = agree_on_run_dir(out, cfg, resume, ddp)
        if state is None:
            tok_json = starting_tokenizer(cfg, init_from)
        run = setup(cfg, out, ddp.device, ddp, tok_json)
        restore(run, state, init_from)
        return _loop(run, resume, progress, stop_after)
    finally:
        ddp.close()


class _Interrupt:
    """Ctrl-C finishes the current step, saves and stops (the previous handler comes back after)."""

    def __init__(self) -> None:
        self.flag = False

    def __enter__(self) -> _Interrupt:
        self.old = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda signum, frame: setattr(self, "flag", True))
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self.old)


def _loop(run: Run, resume: bool, progress: bool, stop_after: int | None) -> dict[str, Any]:
    tc, ddp = run.cfg.train, run.ddp
    net = torch.nn.parallel.DistributedDataParallel(run.model) if ddp.enabled else run.model
    if ddp.main:
        run.out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(run.out / METRICS_FILE, ddp.main)
    if resume:
        log.truncate_after(run.step)
    budget_s = tc.max_minutes * 60.0
    # bf16 autocast only where it is fast (CUDA); on these CPUs it has no fast path
    use_bf16 = tc.bf16 and run.device.type == "cuda"
    autocast = torch.autocast(run.device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    tokens_per_step = tc.batch_size * tc.grad_accum * run.objective.example_len * ddp.world
    by_steps = budget_s == 0  # the bar counts steps, or seconds of a time budget
    bar = tqdm(total=tc.max_steps if by_steps else int(budget_s),
               initial=run.step if by_steps else int(run.elapsed), disable=not (progress and ddp.main),
               unit="step" if by_steps else "s", desc=f"train {run.cfg.recipe}", dynamic_ncols=True)
    metrics: dict[str, Any] = {}
    stop_reason = "max_steps"
    t_window, tok_window = time.perf_counter(), 0
    with _Interrupt() as interrupt:
        with bar:
            run.model.train()
            while run.step < tc.max_steps:
                t0 = time.perf_counter()
                progress = run.elapsed / budget_s if budget_s > 0 else run.step / tc.max_steps
                lr = lr_at(progress, run.step, tc)
                if isinstance(run.objective, ArmdObjective):
                    run.objective.progress = min(progress, 1.0)  # its rho ramp (SPEC §5.3)
                loss, stats, grad_norm = train_step(run, net, lr, autocast)
                run.tokens_seen += tokens_per_step
                tok_window += tokens_per_step
                # one collective per step: agree on elapsed time (rank 0's clock) and on Ctrl-C
                dt = time.perf_counter() - t0
                run.elapsed, stop_flag = ddp.max_([run.elapsed + dt, float(interrupt.flag)])
                if run.step % tc.log_interval == 0 or run.step == 1:
                    now = time.perf_counter()
                    tps = tok_window / max(now - t_window, 1e-9)
                    t_window, tok_window = now, 0
                    log.write({"step": run.step, "split": "train", "loss": round(loss, 5), "lr": lr,
                               "grad_norm": round(float(grad_norm), 4), "tokens": run.tokens_seen,
                               "tokens_per_s": round(tps, 1), "elapsed_s": round(run.elapsed, 2),
                               **{k: round(v, 5) for k, v in stats.items()}})
                    bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tps:,.0f}", lr=f"{lr:.2e}")
                bar.update(1 if budget_s == 0 else int(run.elapsed) - bar.n)
                if run.step % tc.eval_interval == 0:
                    metrics = _validate_and_log(run, log)
                if stop_flag or (stop_after is not None and run.step >= stop_after):
                    stop_reason = "interrupted"
                    break
                if budget_s > 0 and run.elapsed >= budget_s:
                    stop_reason = "max_minutes"
                    break
                if run.step % tc.ckpt_interval == 0:
                    save(run, metrics)
        if stop_reason != "interrupted" or run.step % tc.eval_interval != 0:
            metrics = _validate_and_log(run, log)
        save(run, metrics)
    return _finish(run, log, stop_reason, metrics)


def _finish(run: Run, log: MetricsLog, stop_reason: str, metrics: dict[str, Any]) -> dict[str, Any]:
    result = {"step": run.step, "tokens": run.tokens_seen, "elapsed_s": run.elapsed,
              "stop_reason": stop_reason, **metrics}
    if run.ddp.enabled:  # every rank must end with the same weights
        digests = run.ddp.gather(param_digest(run.model))
        result["rank_weight_digests"] = digests
        result["ranks_identical"] = all(d == digests[0] for d in digests)
    log.write({"step": run.step, "split": "end", **result})
    return result
