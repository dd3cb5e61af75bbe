"""Training loop: one function, `train(cfg, out_dir)`, for diffusion and causal objectives.

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
import copy
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .checkpoint import (
    LATEST,
    MODEL_FILE,
    STATE_FILE,
    atomic_write_text,
    git_commit,
    load_tokenizer,
    read_checkpoint,
    read_weights,
    save_run_checkpoint,
)
from .config import RunConfig, config_diff
from .data import BlockSampler, encode, load_corpus, train_tokenizer
from .errors import ArdmError
from .likelihood import LN2, absorbing_nelbo
from .model import Denoiser
from .objectives import make_objective
from .tokenizer import tokenizer_from_json

# Changing these on --resume does not change what is being trained, only how long or how it is logged.
RESUMABLE_KEYS = {"train.max_steps", "train.max_minutes", "train.eval_interval", "train.eval_batches",
                  "train.ckpt_interval", "train.log_interval", "train.device", "train.threads",
                  "data.path"}
METRICS_FILE = "metrics.jsonl"


def lr_at(progress: float, step: int, cfg) -> float:
    """Linear warmup over warmup_steps, then cosine from lr to min_lr as progress goes 0 -> 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * p))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ArdmError(f"train.device={name!r} but CUDA is not available on this machine")
    return torch.device(name)


class Distributed:
    """Rank/world bookkeeping; a no-op for single-process runs."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        self.device = device
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
            if device.type == "cuda":
                local = int(os.environ.get("LOCAL_RANK", "0"))
                self.device = torch.device("cuda", local)
                torch.cuda.set_device(self.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast_str(self, s: str | None) -> str:
        if not self.enabled:
            return s  # type: ignore[return-value]
        box = [s]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def max_(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        where = self.device if self.device.type == "cuda" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=where)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _param_digest(model: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(sum((p.double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))


class MetricsLog:
    """Append-only JSON lines (rank 0). On resume, lines past the checkpoint's step are dropped."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        keep = [ln for ln in self.path.read_text().splitlines() if ln.strip()
                and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(ln + "\n" for ln in keep))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


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
        if cfg.train.objective == "diffusion":
            elbo.append(absorbing_nelbo(model, x, 1, gen).sum().item())
    out = {"val_loss": sum(losses) / len(x_all)}
    if elbo:
        out["val_elbo_bits_per_token"] = sum(elbo) / (len(x_all) * n) / LN2
    else:
        out["val_bits_per_token"] = out["val_loss"] / LN2
    model.train()
    return out


def _clean_masks(corpus, train_ids: torch.Tensor, val_ids: torch.Tensor):
    """The corpus's clean masks (e.g. Sudoku givens) as tensors aligned with the token ids, or Nones."""
    if corpus.train_clean is None:
        return None, None
    if len(corpus.train_clean) != train_ids.numel() or len(corpus.val_clean) != val_ids.numel():
        raise ArdmError(f"corpus {corpus.source} marks clean positions per character, so it needs "
                        "--set data.tokenizer=char (one token per character)")
    return torch.from_numpy(corpus.train_clean), torch.from_numpy(corpus.val_clean)


def _init_weights(path, cfg: RunConfig, tokenizer, model: Denoiser, ema) -> dict[str, Any]:
    """Load a checkpoint's weights into a fresh run (--init-from); its config record for the metadata."""
    ckpt = read_checkpoint(path)
    mine, theirs = cfg.to_dict()["model"], ckpt.config.to_dict()["model"]
    diff = config_diff({"model": theirs}, {"model": mine})
    if diff:
        raise ArdmError(f"--init-from {path}: its model differs from this run's: {'; '.join(diff)}")
    if load_tokenizer(ckpt).to_json() != tokenizer.to_json():
        raise ArdmError(f"--init-from {path}: its tokenizer differs from the one built for this corpus")
    weights = read_weights(ckpt)
    for m in (model, ema):
        if m is not None:
            m.load_state_dict(weights)
    return {"path": str(ckpt.path), "model_sha256": ckpt.files[MODEL_FILE]["sha256"],
            "step": ckpt.meta.get("step"), "git_commit": ckpt.meta.get("git_commit")}


def train(cfg: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False, progress: bool = True,
          stop_after: int | None = None, init_from: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train and checkpoint into `out_dir`. `stop_after` (tests) stops as if interrupted at that step.
    `init_from` starts a new run from another checkpoint's weights (fine-tuning; optimizer, schedule and
    step start afresh); it must have the same model config and tokenizer."""
    out = Path(out_dir)
    device = resolve_device(cfg.train.device)
    ddp = Distributed(device)
    device = ddp.device
    try:
        return _train(cfg, out, device, ddp, resume, progress, stop_after, init_from)
    finally:
        ddp.close()


def _prepare_run_dir(out: Path, cfg: RunConfig, resume: bool):
    """Check the run directory against --resume; return (tokenizer JSON, training state) to resume."""
    has_ckpt = (out / LATEST).exists()
    if has_ckpt and not resume:
        raise ArdmError(f"{out} already holds a training run; pass --resume to continue it "
                        "or choose another --out")
    if resume and not has_ckpt:
        raise ArdmError(f"--resume: no checkpoint in {out} (expected {out / LATEST})")
    if not resume:
        return None, None
    ckpt = read_checkpoint(out)
    if ckpt.state_path() is None:
        raise ArdmError(f"--resume: {ckpt.path} has no {STATE_FILE} (exported checkpoints cannot resume)")
    saved = ckpt.config.to_dict()
    cfg.model.vocab_size = saved["model"]["vocab_size"]  # recipes leave it 0 (set from the tokenizer)
    diff = [d for d in config_diff(saved, cfg.to_dict()) if d.split(":")[0] not in RESUMABLE_KEYS]
    if diff:
        raise ArdmError("--resume with a different config than the run in "
                        f"{out}: {'; '.join(diff)}")
    try:
        state = torch.load(ckpt.state_path(), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ArdmError(f"--resume: cannot read {ckpt.state_path()} ({e})") from None
    return load_tokenizer(ckpt).to_json(), state


def _train(cfg: RunConfig, out: Path, device, ddp: Distributed, resume: bool, progress: bool,
           stop_after: int | None, init_from: str | os.PathLike | None = None) -> dict[str, Any]:
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    tok_json, state, verdict = None, None, "ok"
    if ddp.main:
        try:
            tok_json, state = _prepare_run_dir(out, cfg, resume)
        except ArdmError as e:
            if not ddp.enabled:
                raise
            verdict = str(e)
    if ddp.enabled:  # every rank learns rank 0's verdict; a failure on rank 0 stops all ranks
        verdict = ddp.broadcast_str(verdict if ddp.main else None)
        if verdict != "ok":
            raise ArdmError(verdict)
        resume_flag = ddp.broadcast_str("1" if state is not None else "0") == "1"
        if resume_flag and not ddp.main:
            _, state = _prepare_run_dir(out, cfg, True)
    corpus = load_corpus(cfg.data)
    if tok_json is None:
        tok_json = ddp.broadcast_str(train_tokenizer(cfg.data, corpus).to_json() if ddp.main else None)
    elif ddp.enabled:
        tok_json = ddp.broadcast_str(tok_json if ddp.main else None)
    tokenizer = tokenizer_from_json(tok_json)
    if cfg.model.vocab_size not in (0, tokenizer.vocab_size):
        raise ArdmError(f"model.vocab_size={cfg.model.vocab_size} but the tokenizer has "
                        f"{tokenizer.vocab_size} symbols (leave it 0 to take the tokenizer's)")
    cfg.model.vocab_size = tokenizer.vocab_size

    train_ids, val_ids = encode(tokenizer, corpus.train), encode(tokenizer, corpus.val)
    train_clean, val_clean = _clean_masks(corpus, train_ids, val_ids)
    objective = make_objective(cfg)
    sampler = BlockSampler(train_ids, objective.example_len, tc.seed + 1000 * ddp.rank, cfg.data.record_len,
                           clean=train_clean)
    if val_ids.numel() < objective.example_len:
        raise ArdmError(f"validation split has {val_ids.numel()} tokens, fewer than one block of "
                        f"{objective.example_len}; use a longer corpus or a larger data.val_fraction")
    noise_gen = torch.Generator().manual_seed(tc.seed * 7919 + 17 + ddp.rank)
    torch.manual_seed(tc.seed + ddp.rank)

    model = Denoiser(cfg.model).to(device)
    ema = copy.deepcopy(model).eval() if tc.ema_decay > 0 else None
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tc.lr, betas=(0.9, tc.beta2), fused=device.type == "cuda")
    step, tokens_seen, elapsed = 0, 0, 0.0
    init_meta = None if state is None else state.get("init_from")  # a resumed run keeps its origin
    if init_from is not None and state is None:
        init_meta = _init_weights(init_from, cfg, tokenizer, model, ema)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        step, tokens_seen, elapsed = state["step"], state["tokens"], state["elapsed_s"]
        sampler.generator.set_state(state["rng"]["data"][ddp.rank])
        noise_gen.set_state(state["rng"]["noise"][ddp.rank])
        torch.set_rng_state(state["rng"]["torch"][ddp.rank])
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp.enabled else model

    out.mkdir(parents=True, exist_ok=True) if ddp.main else None
    log = MetricsLog(out / METRICS_FILE, ddp.main)
    if resume:
        log.truncate_after(step)
    meta_base = {"recipe": cfg.recipe, "git_commit": git_commit(), "data_sha256": corpus.sha256,
                 "data_source": corpus.source, "params": model.num_params(non_embedding=False),
                 "params_non_embedding": model.num_params(), "world_size": ddp.world}
    if init_meta is not None:
        meta_base["init_from"] = init_meta

    def gather_rng() -> dict[str, list[torch.Tensor]]:
        mine = [sampler.generator.get_state(), noise_gen.get_state(), torch.get_rng_state()]
        if not ddp.enabled:
            return {"data": [mine[0]], "noise": [mine[1]], "torch": [mine[2]]}
        everyone = [None] * ddp.world
        dist.all_gather_object(everyone, mine)
        return {k: [r[i] for r in everyone] for i, k in enumerate(("data", "noise", "torch"))}

    def save(metrics: dict[str, Any]) -> None:
        rng = gather_rng()  # collective: every rank takes part, rank 0 writes
        if not ddp.main:
            return
        weights = (ema or model).state_dict()
        training_state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                          "ema": ema.state_dict() if ema is not None else {}, "step": step,
                          "tokens": tokens_seen, "elapsed_s": elapsed, "rng": rng, "init_from": init_meta}
        save_run_checkpoint(out, step, cfg=cfg, weights=weights, tokenizer=tokenizer,
                            meta={**meta_base, "step": step, "tokens": tokens_seen,
                                  "elapsed_s": round(elapsed, 2), "metrics": metrics},
                            training_state=training_state)

    interrupted = {"flag": False}
    old_handler = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):  # Ctrl-C: finish the step, save, stop
        interrupted["flag"] = True

    signal.signal(signal.SIGINT, on_sigint)
    budget_s = tc.max_minutes * 60.0
    # bf16 autocast only where it is fast (CUDA); on these CPUs it has no fast path
    use_bf16 = tc.bf16 and device.type == "cuda"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    tokens_per_step = tc.batch_size * tc.grad_accum * objective.example_len * ddp.world
    last_metrics: dict[str, Any] = {}
    stop_reason = "max_steps"
    from tqdm import tqdm

    by_steps = budget_s == 0  # the bar counts steps, or seconds of a time budget
    bar = tqdm(total=tc.max_steps if by_steps else int(budget_s), initial=step if by_steps else int(elapsed),
               disable=not (progress and ddp.main), unit="step" if by_steps else "s",
               desc=f"train {cfg.recipe}", dynamic_ncols=True)
    t_window, tok_window = time.perf_counter(), 0
    try:
        model.train()
        while step < tc.max_steps:
            t0 = time.perf_counter()
            progress_frac = elapsed / budget_s if budget_s > 0 else step / tc.max_steps
            lr = lr_at(progress_frac, step, tc)
            for g in opt.param_groups:
                g["lr"] = lr
            loss_sum, stats = 0.0, {}
            for micro in range(tc.grad_accum):
                x, given = sampler.batch_with_clean(tc.batch_size, objective.example_len)
                x = x.to(device, non_blocking=True)
                sync = ddp.enabled and micro < tc.grad_accum - 1
                with (net.no_sync() if sync else contextlib.nullcontext()), autocast:
                    loss, stats = objective.loss(net, x, noise_gen, given)
                (loss / tc.grad_accum).backward()
                loss_sum += loss.item() / tc.grad_accum
            if not math.isfinite(loss_sum):
                raise ArdmError(f"loss became {loss_sum} at step {step}; lower train.lr or check the data")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip or float("inf"))
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if ema is not None:  # warm-started EMA so early checkpoints are not stuck at init
                d = min(tc.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.lerp_(pm, 1 - d)
            tokens_seen += tokens_per_step
            tok_window += tokens_per_step
            dt = time.perf_counter() - t0
            # one collective per step: agree on elapsed time (rank 0's clock) and on Ctrl-C
            elapsed_new, stop_flag = ddp.max_([elapsed + dt, float(interrupted["flag"])])
            elapsed = elapsed_new
            if step % tc.log_interval == 0 or step == 1:
                now = time.perf_counter()
                tps = tok_window / max(now - t_window, 1e-9)
                t_window, tok_window = now, 0
                rec = {"step": step, "split": "train", "loss": round(loss_sum, 5), "lr": lr,
                       "grad_norm": round(float(grad_norm), 4), "tokens": tokens_seen,
                       "tokens_per_s": round(tps, 1), "elapsed_s": round(elapsed, 2),
                       **{k: round(v, 5) for k, v in stats.items()}}
                log.write(rec)
                bar.set_postfix(loss=f"{loss_sum:.4f}", tok_s=f"{tps:,.0f}", lr=f"{lr:.2e}")
            bar.update(1 if budget_s == 0 else int(elapsed) - bar.n)
            if step % tc.eval_interval == 0:
                last_metrics = validate(ema or model, objective, val_ids, cfg, device, val_clean)
                log.write({"step": step, "split": "val", **last_metrics, "elapsed_s": round(elapsed, 2)})
            if stop_after is not None and step >= stop_after:
                stop_flag = 1.0
            if stop_flag:
                stop_reason = "interrupted"
                break
            if budget_s > 0 and elapsed >= budget_s:
                stop_reason = "max_minutes"
                break
            if step % tc.ckpt_interval == 0:
                save(last_metrics)
        bar.close()
        if stop_reason != "interrupted" or step % tc.eval_interval != 0:
            last_metrics = validate(ema or model, objective, val_ids, cfg, device, val_clean)
            log.write({"step": step, "split": "val", **last_metrics, "elapsed_s": round(elapsed, 2)})
        save(last_metrics)
        result = {"step": step, "tokens": tokens_seen, "elapsed_s": elapsed, "stop_reason": stop_reason,
                  **last_metrics}
        if ddp.enabled:  # every rank must end with the same weights
            digests = [None] * ddp.world
            dist.all_gather_object(digests, _param_digest(model))
            result["rank_weight_digests"] = digests
            result["ranks_identical"] = all(d == digests[0] for d in digests)
        log.write({"step": step, "split": "end", **result})
        return result
    finally:
        bar.close()
        signal.signal(signal.SIGINT, old_handler)
