"""The gate's long-horizon stage (SPEC §11.3, issue 15): a policy gradient over whole rollouts.

The supervised stage (ardm.generation.gate.training) teaches the gate where the denoiser is wrong
one step ahead. This stage rewards the FINAL sample instead:

    rollouts  B runs of the deployed gate sampler (frozen denoiser, current gate, no grad); every
              Bernoulli decision of the gate is recorded with what the gate saw
    reward    R_b of each final sample, from a callable (text: the AR reference's log-likelihood
              per token, ardm.evaluation.rewards; Sudoku: exact correctness)
    loss      REINFORCE with the leave-one-out baseline (RLOO): A_b = R_b - mean_{b' != b} R_b',
              L = -mean_b A_b * sum_k sum_i log P(decision_{k,i} | gate), P recomputed WITH gradients
              by the one overwrite_probability function

The decisions are the gate's own coins: mode="remdm": remask_i ~ Bernoulli(pi_i) on visible tokens,
pi = the remask budget spread by p (GateSampler.remask_probability); replace / remask modes with
Bernoulli masks: m_i ~ Bernoulli(p_i) on visible tokens. Count-rule reveals and token draws are not
the gate's decisions and carry no gradient. The normalisation statistics stay frozen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ardm.core.denoiser import Denoiser
from ardm.errors import ArdmError
from ardm.generation.gate.sampler import GateSampler
from ardm.generation.loop import generate
from ardm.generation.samplers.base import StepState, WriteSet

P_EPS = 1e-6  # decision probabilities clamped to [1e-6, 1 - 1e-6] before the log (as SPEC §7.3)
VAL_SEED = 1_000_000  # validation rollouts use seeds VAL_SEED.. (never the training seeds)

# tokens [B, L] -> {"reward": [B], other per-sample metrics [B] to log}
Reward = Callable[[torch.Tensor], dict[str, torch.Tensor]]
# (seed, batch) -> the rollouts' given tokens [B, L] (-1 where free; generate's `given`), or None for
# prompt-only rollouts (text). Sudoku: `group` rollouts of each of batch / group puzzles.
Givens = Callable[[int, int], "torch.Tensor | None"]


@dataclass
class Decision:
    """What the gate saw at one step, and which visible tokens its coins picked (no-grad tensors)."""

    state: StepState  # the step's state as the sampler saw it (x copied: the loop moves on)
    visible: torch.Tensor  # [B, L] bool: the tokens the gate decided on
    picked: torch.Tensor  # [B, L] bool: overwritten (replace), remasked (remask, remdm)
    used: torch.Tensor  # [B, L] the probabilities the coins were compared with (float32, for checks)


class RecordingGate(GateSampler):
    """The gate sampler, unchanged, that also keeps every step's Decision for the policy gradient."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decisions: list[Decision] = []

    def step(self, s: StepState) -> WriteSet:
        ws = super().step(s)
        visible = s.target & ~s.settled & ~s.masked
        assert ws.gate is not None
        self.decisions.append(Decision(replace(s, x=s.x.clone()), visible, ws.positions & visible, ws.gate))
        return ws


def trainable_scorer(sampler: GateSampler) -> torch.nn.Module:
    """The sampler's gate as the nn.Module the stage trains (a LinearGate or MLPGate, not NoGate)."""
    if not isinstance(sampler.scorer, torch.nn.Module) or not list(sampler.scorer.parameters()):
        raise ArdmError("the policy-gradient stage trains a linear or MLP gate; this sampler's gate has "
                        "no parameters (gate=none)")
    return sampler.scorer


def check_policy_options(sampler: GateSampler) -> None:
    """The stage needs the gate's decisions to be coins with probabilities it can differentiate."""
    o = sampler.options
    if o.mode != "remdm" and (o.mask != "bernoulli" or o.cap):
        raise ArdmError("the gate's policy-gradient stage needs Bernoulli decisions: mode=remdm, or "
                        f"mask=bernoulli without a cap (got mode={o.mode}, mask={o.mask}, cap={o.cap})")


def decision_log_prob(sampler: GateSampler, decisions: list[Decision]) -> torch.Tensor:
    """sum over steps and visible tokens of log P(the recorded decision), with gradients into the
    gate's scorer (p recomputed by GateSampler.probability on the recorded states). [B]"""
    total = torch.zeros(decisions[0].visible.shape[0], dtype=torch.float64)
    for d in decisions:
        s = d.state
        p = torch.where(d.visible, sampler.probability(s).p.double(), 0.0)
        q = sampler.remask_probability(s.k, s.K, p, d.visible) if sampler.options.mode == "remdm" else p
        q = q.clamp(P_EPS, 1 - P_EPS)
        lp = torch.where(d.picked, q.log(), torch.log1p(-q))
        total = total + torch.where(d.visible, lp, 0.0).sum(1).cpu()
    return total


def rloo_advantage(reward: torch.Tensor, group: int = 0) -> torch.Tensor:
    """R_b minus the mean of the other rewards of its group (leave-one-out baseline, GRPO-style over
    the k rollouts of one prompt or puzzle): consecutive groups of `group` rows; 0 = one group. [B]"""
    B = reward.shape[0]
    k = group or B
    if k < 2 or B % k:
        raise ArdmError(f"the policy-gradient stage needs groups of at least 2 rollouts that divide the "
                        f"batch (RLOO baseline); got batch {B}, group {k}")
    r = reward.view(B // k, k)
    return (r - (r.sum(1, keepdim=True) - r) / (k - 1)).reshape(B)


@dataclass
class PolicyConfig:
    steps: int = 40  # policy-gradient updates
    batch_size: int = 16  # rollouts per update
    length: int = 128  # generated tokens per rollout
    sampler_steps: int = 64  # K (train with the K you will sample with)
    lr: float = 1e-4
    temperature: float = 1.0
    grad_clip: float = 1.0
    seed: int = 0
    eval_interval: int = 10
    val_batch: int = 32
    group: int = 0  # RLOO groups: rollouts of one prompt / puzzle in a row (0: the whole batch)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "length", "sampler_steps", "eval_interval", "val_batch"):
            if getattr(self, name) < 1:
                raise ArdmError(f"policy {name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ArdmError("policy batch-size must be >= 2 (the leave-one-out baseline)")
        if self.group and (self.group < 2 or self.batch_size % self.group):
            raise ArdmError(f"policy group must be >= 2 and divide the batch ({self.batch_size}), "
                            f"got {self.group}")
        if not (self.lr > 0 and self.temperature >= 0 and self.grad_clip > 0):
            raise ArdmError("policy lr and grad-clip must be > 0, temperature >= 0")


def _rollouts(model: Denoiser, sampler: RecordingGate, cfg: PolicyConfig, prompt: torch.Tensor, batch: int,
              seed: int, givens: Givens | None = None):
    sampler.decisions = []
    given = None if givens is None else givens(seed, batch)
    # a task with givens (Sudoku) conditions on its prompt as on its givens: both clean, as in training
    return generate(model, sampler, length=len(prompt) + cfg.length, steps=cfg.sampler_steps, batch=batch,
                    prompt=prompt, seed=seed, temperature=cfg.temperature, given=given,
                    clean_prompt=givens is not None)


def _validate(model: Denoiser, sampler: RecordingGate, reward: Reward, cfg: PolicyConfig,
              prompt: torch.Tensor, givens: Givens | None = None) -> dict[str, float]:
    """Mean of every reward metric over fixed-seed rollouts (the same at every validation)."""
    trainable_scorer(sampler).eval()
    with torch.no_grad():
        g = _rollouts(model, sampler, cfg, prompt, cfg.val_batch, VAL_SEED, givens)
        metrics = reward(g.tokens)
    sampler.decisions = []
    picked = sum(g.overwrites_selected) / max(1, cfg.val_batch)
    return {**{k: round(float(v.double().mean()), 6) for k, v in metrics.items()},
            "decisions_picked_per_sample": round(picked, 3)}


def train_policy(model: Denoiser, sampler: RecordingGate, reward: Reward, cfg: PolicyConfig,
                 prompt: torch.Tensor, *, givens: Givens | None = None,
                 log: Callable[[dict], None] = lambda _: None, progress: bool = True) -> dict:
    """Fine-tune sampler.scorer (in place) by REINFORCE with a leave-one-out baseline; the denoiser
    stays frozen. `givens`: fixed tokens per rollout (Sudoku puzzles). Returns {"initial": val metrics,
    "final": val metrics, "elapsed_s"}."""
    from tqdm import tqdm

    check_policy_options(sampler)
    net = trainable_scorer(sampler)
    start = time.perf_counter()
    optim = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    initial = _validate(model, sampler, reward, cfg, prompt, givens)
    log({"step": 0, "split": "val", **initial})
    final = initial
    bar = tqdm(range(1, cfg.steps + 1), desc="train-gate policy", disable=not progress, dynamic_ncols=True)
    for step in bar:
        net.eval()
        with torch.no_grad():
            seed = cfg.seed + step * cfg.batch_size
            g = _rollouts(model, sampler, cfg, prompt, cfg.batch_size, seed, givens)
            metrics = reward(g.tokens)
        adv = rloo_advantage(metrics["reward"].double(), cfg.group)
        net.train()
        logp = decision_log_prob(sampler, sampler.decisions)
        loss = -(adv * logp).mean() / cfg.length
        optim.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        if not math.isfinite(float(norm)):
            raise ArdmError(f"policy gradient became {float(norm)} at step {step}; lower --policy-lr")
        optim.step()
        sampler.decisions = []
        means = {k: round(float(v.double().mean()), 6) for k, v in metrics.items()}
        log({"step": step, "split": "train", "loss": round(loss.item(), 6),
             "grad_norm": round(float(norm), 6), **means, "elapsed_s": round(time.perf_counter() - start, 2)})
        if step % cfg.eval_interval == 0 or step == cfg.steps:
            final = _validate(model, sampler, reward, cfg, prompt, givens)
            log({"step": step, "split": "val", **final})
        bar.set_postfix(reward=f"{means['reward']:.3f}", val=f"{final['reward']:.3f}")  # val: the latest one
    net.eval()
    return {"initial": initial, "final": final, "elapsed_s": round(time.perf_counter() - start, 2)}


def finetune_gate(checkpoint, gate: str, reward: Reward, cfg: PolicyConfig | None = None, *, out: str,
                  prompt: torch.Tensor, givens: Givens | None = None, device: str = "cpu",
                  progress: bool = True) -> dict:
    """Load the trained gate in `gate` (keyed to `checkpoint`'s weights), fine-tune it by the policy
    gradient and write it, with its stage history in gate.json and metrics.jsonl, to `out` (atomic).
    `gate` and `out` may be the same folder. Returns the stage summary."""
    import dataclasses
    import json
    import shutil
    from pathlib import Path

    from ardm.core.checkpoint import atomic_folder, load_model, read_checkpoint
    from ardm.core.runtime import resolve_device
    from ardm.generation.gate.store import load_gate, write_gate_files

    cfg = cfg or PolicyConfig()
    ckpt = read_checkpoint(checkpoint)
    trained = load_gate(gate, ckpt)
    dev = resolve_device(device)
    model = load_model(ckpt, str(dev))
    model.requires_grad_(False)
    if len(prompt) + cfg.length > model.cfg.max_len:
        raise ArdmError(f"prompt ({len(prompt)}) + policy length {cfg.length} exceed the denoiser's context "
                        f"({model.cfg.max_len})")
    torch.manual_seed(cfg.seed)
    sampler = RecordingGate(scorer=trained.scorer.to(dev), stats=trained.stats,
                            **{**trained.options, "gate": "learned"})
    lines: list[str] = []
    summary = train_policy(model, sampler, reward, cfg, prompt.to(dev), givens=givens, progress=progress,
                           log=lambda rec: lines.append(json.dumps(rec)))
    training = {**trained.doc.get("training", {}), "policy": {**dataclasses.asdict(cfg), **summary}}
    metrics = {**trained.doc.get("metrics", {}), "policy": summary}
    old_log = Path(gate) / "metrics.jsonl"
    with atomic_folder(out) as tmp:
        if old_log.exists():
            shutil.copyfile(old_log, tmp / "metrics.jsonl")
        with open(tmp / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.writelines(json.dumps({"stage": "policy", **json.loads(line)}) + "\n" for line in lines)
        write_gate_files(tmp, trainable_scorer(sampler), trained.stats,  # type: ignore[arg-type]
                          trained.options, ckpt, training, metrics)
    return {"out": str(out), **summary}
