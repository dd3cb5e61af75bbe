"""The one generation loop (SPEC §6.0; STYLE "one loop, many policies").

`generate()` owns the state, the denoiser calls, NFE counting, prompts and seeds; a sampler is a
small policy that, given this step's logits, says which positions to (re)write and with what.

    state = init ; for k in 1..K: Z, H = f(x, t_k) [1 NFE] ; W, vals = sampler.step(state) ; x[W] = vals
    final: if a MASK remains, one more pass and fill it (+1 NFE)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .sampling import sample_tokens


@dataclass
class StepState:
    """What a sampler sees at step k (1-based) of K."""

    x: torch.Tensor  # [B, L] current tokens, MASK = vocab_size
    logits: torch.Tensor  # [B, L, V] this step's denoiser output
    hidden: torch.Tensor  # [B, L, d]
    k: int
    K: int
    mask_id: int
    prompt_mask: torch.Tensor  # [B, L] bool, never written
    generator: torch.Generator
    temperature: float = 1.0
    top_p: float = 1.0

    @property
    def masked(self) -> torch.Tensor:
        return self.x == self.mask_id


@dataclass
class WriteSet:
    positions: torch.Tensor  # [B, L] bool
    values: torch.Tensor  # [B, L] token ids (MASK allowed for remasking samplers)


class Sampler:
    """A policy on the loop. Subclasses set `name` and implement `step` (and maybe `levels`)."""

    name = "base"
    needs_causal_model = False

    def num_steps(self, length: int, steps: int) -> int:
        return steps

    def levels(self, x: torch.Tensor, k: int, K: int, mask_id: int) -> torch.Tensor:
        """Per-token noise levels fed to the denoiser at step k. Default: the flat schedule's level
        1 - (k-1)/K at every position, as in flat-schedule training (where all positions of a
        sequence share t); hyperschedule samplers override this."""
        return torch.full(x.shape, 1.0 - (k - 1) / K, device=x.device)

    def step(self, s: StepState) -> WriteSet:
        raise NotImplementedError


class MDLMSampler(Sampler):
    """Ancestral sampling for absorbing noise (MDLM): from t = 1 - (k-1)/K to s = 1 - k/K each MASK
    is revealed with probability (t - s)/t = 1/(K - k + 1), its value drawn from q."""

    name = "mdlm"

    def step(self, s: StepState) -> WriteSet:
        reveal_p = 1.0 / (s.K - s.k + 1)
        u = torch.rand(s.x.shape, generator=s.generator, dtype=torch.float64).to(s.x.device)
        reveal = s.masked & (u < reveal_p)
        values = sample_tokens(s.logits, s.generator, s.temperature, top_p=s.top_p)
        return WriteSet(reveal, values)


class ARSampler(Sampler):
    """True autoregressive decoding with a causal model: step k writes position (first free) + k - 1."""

    name = "ar"
    needs_causal_model = True

    def num_steps(self, length: int, steps: int) -> int:
        return length

    def levels(self, x, k, K, mask_id):
        return torch.zeros(x.shape, device=x.device)

    def step(self, s: StepState) -> WriteSet:
        # the causal model's logits at position i predict token i + 1
        B, L = s.x.shape
        pos = (~s.masked).long().sum(1)  # next position to write (prompt is a prefix)
        positions = torch.zeros_like(s.masked)
        values = torch.full_like(s.x, s.mask_id)
        sampled = sample_tokens(s.logits[torch.arange(B), (pos - 1).clamp_min(0)], s.generator,
                                s.temperature, top_p=s.top_p)
        ok = pos < L
        positions[torch.arange(B)[ok], pos[ok]] = True
        values[torch.arange(B)[ok], pos[ok]] = sampled[ok]
        return WriteSet(positions, values)


SAMPLERS = {cls.name: cls for cls in (MDLMSampler, ARSampler)}


@dataclass
class Generation:
    tokens: torch.Tensor  # [B, L]
    nfe: int
    steps: int
    history: list[torch.Tensor] = field(default_factory=list)  # x after each step, if recorded


@torch.no_grad()
def generate(model, sampler: Sampler, *, length: int, steps: int, batch: int = 1,
             prompt: torch.Tensor | None = None, seed: int = 0, temperature: float = 1.0,
             top_p: float = 1.0, record: bool = False) -> Generation:
    """Run `sampler` for K steps from an all-MASK sequence (prompt tokens fixed at the front)."""
    device = next(model.parameters()).device
    mask_id = model.cfg.vocab_size
    causal = model.cfg.attention == "causal"
    if sampler.needs_causal_model != causal:
        kind = "causal" if sampler.needs_causal_model else "bidirectional"
        raise ValueError(f"sampler {sampler.name!r} needs a {kind} model")
    gen = torch.Generator().manual_seed(seed)
    x = torch.full((batch, length), mask_id, dtype=torch.long, device=device)
    prompt_mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
    if prompt is not None and prompt.numel():
        p = prompt.to(device).reshape(-1)
        x[:, : p.numel()] = p
        prompt_mask[:, : p.numel()] = True
    if causal and not prompt_mask.any():
        raise ValueError("a causal model needs a prompt of at least one token (e.g. a newline)")
    K = sampler.num_steps(length, steps)
    nfe, history = 0, []
    for k in range(1, K + 1):
        if causal and not (x == mask_id).any():
            break
        t = sampler.levels(x, k, K, mask_id)
        logits, hidden = model(x, t)
        nfe += 1
        w = sampler.step(StepState(x, logits, hidden, k, K, mask_id, prompt_mask, gen, temperature, top_p))
        write = w.positions & ~prompt_mask
        x = torch.where(write, w.values, x)
        if record:
            history.append(x.clone())
    if (x == mask_id).any() and not causal:  # MDLM "noise removal": fill what is left, +1 NFE
        logits, _ = model(x, torch.full(x.shape, 1.0 / K, device=x.device))
        nfe += 1
        x = torch.where(x == mask_id, logits.argmax(-1), x)
    return Generation(x, nfe, K, history)
