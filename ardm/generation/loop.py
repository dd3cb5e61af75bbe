"""The one generation loop (SPEC §6.0; STYLE "one loop, many policies").

`generate()` owns the state, the denoiser calls, NFE counting, prompts, batching, seeds, EOS,
progress and tracing; a sampler (ardm.generation.samplers) is a small policy that, given this step's logits,
says which positions to (re)write and with what:

    state = init ; for k in 1..K: t = sampler.levels(state) ; Z, H = f(x, t) [1 NFE]
                                  W = sampler.step(state + Z, H) ; x[W \\ settled] = values
    final: if a MASK remains (before the first EOS), one more pass fills it by argmax (+1 NFE)

Rows never interact: each has its own generator seeded seed + b, so a batch of B equals B single
runs with seeds seed..seed+B-1. `StepState.settled` (prompt + what the sampler settled) is what a
KV cache of settled positions may hold; the loop already refuses to write there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from tqdm import tqdm

from ardm.core.denoiser import Denoiser
from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler, StepState, TokenSampling, WriteSet

__all__ = ["generate", "Generation"]

COUNTERS = ("nfe_per_sample", "writes", "overwrites_selected", "overwrites_effective", "remasks")


@dataclass
class Generation:
    """The result of one `generate` call. Counts are per sample (lists of length B)."""

    tokens: torch.Tensor  # [B, L] prompt + generated tokens; after the first EOS: pad_id
    nfe: int  # denoiser passes over the batch (SPEC §6.10: a batched pass counts 1 per sequence)
    nfe_per_sample: list[int]  # passes each row took part in (= the NFE of its single run)
    token_forwards: list[int]  # positions processed per row (SPEC §6.10; L per full pass, no cache yet)
    steps: int  # K
    prompt_length: int
    lengths: list[int]  # generated tokens per row, through its first EOS (all n without EOS)
    writes: list[int]  # reveals: MASK -> token
    overwrites_selected: list[int]  # visible tokens the sampler chose to rewrite
    overwrites_effective: list[int]  # ... whose value changed (to another token, or to MASK)
    remasks: list[int]  # token -> MASK (included in overwrites_effective)
    wall_time_s: float
    trace: dict | None = None  # per-step writes/overwrites (JSON-ready), when asked for
    aux: dict[str, Any] = field(default_factory=dict, repr=False)  # the sampler's final state

    def row_counts(self, b: int) -> dict[str, int]:
        """Sample b's cost and revision counts: the per-sample record of `ardm sample` and compare."""
        return {"nfe": self.nfe_per_sample[b], "token_forwards": self.token_forwards[b],
                "writes": self.writes[b], "overwrites_selected": self.overwrites_selected[b],
                "overwrites_effective": self.overwrites_effective[b], "remasks": self.remasks[b]}

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("aux", "tokens")}
        return {"tokens": self.tokens.tolist(), **d}


def _rows(mask: torch.Tensor, *cols: torch.Tensor) -> list[list]:
    """Per row, [position, col values...] for each True position (the trace's JSON lists)."""
    out = []
    for b in range(mask.shape[0]):
        idx = mask[b].nonzero().flatten()
        out.append([[int(i), *(int(c[b, i]) for c in cols)] for i in idx])
    return out


def _first_eos(x: torch.Tensor, prompt_len: int, eos_id: int | None) -> torch.Tensor:
    """Index of each row's first EOS after the prompt (L if none). [B]"""
    B, L = x.shape
    if eos_id is None:
        return torch.full((B,), L, device=x.device)
    pos = torch.arange(L, device=x.device)
    return torch.where((x == eos_id) & (pos >= prompt_len), pos, L).min(1).values


def _eos_settled(s: StepState, eos_id: int | None) -> torch.Tensor:
    """Rows whose every position up to the first EOS is settled: nothing left to generate. [B]"""
    first = _first_eos(s.x, s.prompt_len, eos_id)
    before = torch.arange(s.x.shape[1], device=s.x.device)[None] <= first[:, None]
    return (first < s.x.shape[1]) & ~(before & ~s.settled).any(1)


def _given(given: torch.Tensor | None, batch: int, length: int, prompt_len: int, vocab: int) -> torch.Tensor:
    """[B, L] ids fixed from the start (-1: free), checked; all -1 when there are none."""
    if given is None:
        return torch.full((batch, length), -1, dtype=torch.long)
    g = torch.as_tensor(given).long().cpu()
    g = g.expand(batch, -1) if g.dim() == 1 else g
    if tuple(g.shape) != (batch, length):
        raise ArdmError(f"given must be [L] or [batch, L] = [{batch}, {length}], "
                        f"got shape {tuple(given.shape)}")
    if not bool(((g == -1) | ((g >= 0) & (g < vocab))).all()):
        raise ArdmError(f"given ids must be -1 (free) or in 0..{vocab - 1}")
    if bool((g[:, :prompt_len] >= 0).any()):
        raise ArdmError("given positions must lie after the prompt")
    return g


def _start(model: Denoiser, batch: int, length: int, prompt: torch.Tensor | None, eos_id: int | None, device):
    cfg = model.cfg
    if batch < 1:
        raise ArdmError(f"batch must be >= 1, got {batch}")
    if length < 1:
        raise ArdmError(f"length must be >= 1, got {length}")
    if length > cfg.max_len:
        raise ArdmError(f"length {length} exceeds the model's context (max_len {cfg.max_len})")
    if eos_id is not None and not 0 <= eos_id < cfg.vocab_size:
        raise ArdmError(f"eos_id {eos_id} is outside the vocabulary (0..{cfg.vocab_size - 1})")
    p = torch.zeros(batch, 0, dtype=torch.long) if prompt is None else torch.as_tensor(prompt).long().cpu()
    p = p.expand(batch, -1) if p.dim() == 1 else p
    if p.dim() != 2 or p.shape[0] != batch:
        raise ArdmError(f"prompt must be [P] or [batch, P], got shape {tuple(p.shape)}")
    if p.numel() and not bool(((p >= 0) & (p < cfg.vocab_size)).all()):
        raise ArdmError(f"prompt ids must be in 0..{cfg.vocab_size - 1}")
    if p.shape[1] >= length:
        raise ArdmError(f"the prompt ({p.shape[1]} tokens) must be shorter than the length ({length})")
    if cfg.causal and p.shape[1] == 0:
        raise ArdmError("a causal model needs a prompt of at least one token (e.g. a newline)")
    x = torch.full((batch, length), cfg.vocab_size, dtype=torch.long)
    x[:, : p.shape[1]] = p
    return x.to(device), p.shape[1]


def _apply(s: StepState, w: WriteSet, counts: torch.Tensor, record: bool) -> tuple[StepState, dict | None]:
    """Write a WriteSet into the state (never at settled positions or in finished rows); count it."""
    old = s.x
    write = w.positions & ~s.settled & s.active[:, None]
    x = torch.where(write, w.values, old)
    was_visible = old != s.mask_id
    reveal = write & ~was_visible & (x != s.mask_id)
    selected = write & was_visible
    changed = selected & (x != old)
    remask = changed & (x == s.mask_id)
    for j, m in enumerate((reveal, selected, changed, remask), start=1):
        counts[j] += m.sum(1).cpu()
    settled = s.settled if w.settle is None else s.settled | (w.settle & (x != s.mask_id))
    rec = None
    if record:
        rec = {"k": s.k, "written": _rows(reveal, x), "overwritten": _rows(changed & ~remask, old, x),
               "remasked": _rows(remask, old), "selected": selected.sum(1).tolist()}
        if w.gate is not None:  # gate probabilities on the target span
            rec["gate"] = [[round(float(v), 4) for v in row] for row in w.gate[:, s.prompt_len:]]
    aux = s.aux if w.aux is None else w.aux
    now = reveal | changed
    return replace(s, x=x, settled=settled, aux=aux, changes=s.changes + now.long(),
                   last_change=torch.where(now, s.k, s.last_change)), rec


@torch.no_grad()
def generate(model: Denoiser, sampler: Sampler, *, length: int, steps: int, batch: int = 1,
             prompt: torch.Tensor | None = None, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, eos_id: int | None = None, pad_id: int | None = None,
             given: torch.Tensor | None = None, stop: Callable[[torch.Tensor], torch.Tensor] | None = None,
             progress: bool = False, trace: bool = False, clean_prompt: bool = False) -> Generation:
    """Run `sampler` for (up to) K steps from an all-MASK target after a fixed prompt.

    prompt: [P] (shared) or [batch, P] clean prefix, never rewritten. eos_id: a row is finished once
    every position up to its first EOS is settled; output positions after the first EOS are
    pad_id (default eos_id). given: [L] or [B, L] ids fixed anywhere after the prompt (-1: free),
    settled from the start and fed at noise level 0, as conditioning positions are in training (e.g.
    Sudoku givens). stop(x [B, L]) -> [B] bool: rows it marks finish after the current step (their
    NFE stops counting), e.g. a verifier that accepts the answer. trace: record per step which
    positions were written / overwritten / remasked (and the gate's probabilities) in
    `Generation.trace`. clean_prompt: feed the prompt at noise level 0 whatever the sampler's levels,
    as a seq2seq prefix denoiser saw its source in training (SPEC §11.7; default: the sampler's levels,
    as flat-schedule language models saw a prompt).
    """
    start = time.perf_counter()
    sampling = TokenSampling(temperature, top_k, top_p)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    sampler.check_model(model.cfg.attention)
    x, P = _start(model, batch, length, prompt, eos_id, device)
    B, L = x.shape
    g = _given(given, B, L, P, model.cfg.vocab_size).to(device)
    fixed = g >= 0
    x = torch.where(fixed, g, x)
    level0 = fixed | ((torch.arange(L, device=device) < P)[None] if clean_prompt else fixed)
    K = sampler.num_steps(L - P, steps)
    positions = torch.arange(L, device=device)
    s = StepState.begin(x, k=1, K=K, mask_id=model.cfg.vocab_size, prompt_len=P,
                        settled=(positions < P).expand(B, L) | fixed, sampling=sampling,
                        generators=[torch.Generator().manual_seed(seed + b) for b in range(B)])
    s = replace(s, aux=sampler.init(s))
    counts = torch.zeros(len(COUNTERS), B, dtype=torch.long)
    nfe, records = 0, []
    for k in tqdm(range(1, K + 1), desc=sampler.name, disable=not progress, leave=False):
        s = replace(s, k=k, logits=None, hidden=None, t=None)
        t = torch.where(level0, 0.0, sampler.levels(s))
        logits, hidden = model(s.x, t)
        nfe += 1
        counts[0] += s.active.cpu()
        w = sampler.step(replace(s, logits=logits, hidden=hidden, t=t))
        s, rec = _apply(s, w, counts, trace)
        records += [rec] if trace else []
        done = torch.zeros(B, dtype=torch.bool, device=device) if w.done is None else w.done.to(device)
        if stop is not None:
            done = done | stop(s.x).to(device)
        s = replace(s, prev_logits=logits, active=s.active & ~done & ~_eos_settled(s, eos_id))
        if not s.active.any():
            break
    need = (s.x == s.mask_id) & (positions[None] < _first_eos(s.x, P, eos_id)[:, None])
    if need.any() and not model.cfg.causal:  # MDLM "noise removal": argmax fill, +1 NFE
        rows = need.any(1)
        last = replace(s, k=K, active=rows)
        logits, _ = model(s.x, torch.where(level0, 0.0, sampler.levels(last)))
        nfe += 1
        counts[0] += rows.cpu()
        s, rec = _apply(replace(last, k=K + 1), WriteSet(need, logits.argmax(-1)), counts, trace)
        records += [{**(rec or {}), "final_fill": True}] if trace else []
    first = _first_eos(s.x, P, eos_id)
    pad = eos_id if pad_id is None else pad_id
    tokens = s.x if pad is None else torch.where(positions[None] > first[:, None], pad, s.x)
    c = {name: counts[j].tolist() for j, name in enumerate(COUNTERS)}
    tr = None
    if trace:
        tr = {"sampler": sampler.name, "options": asdict(sampler.options), "length": L, "prompt_length": P,
              "steps": K, "positions": "absolute indices into the sequence (prompt included)",
              "records": records}
    lengths = (first.clamp(max=L - 1) - P + 1).tolist() if eos_id is not None else [L - P] * B
    wall = round(time.perf_counter() - start, 4)
    return Generation(tokens=tokens, nfe=nfe, token_forwards=[L * v for v in c["nfe_per_sample"]], steps=K,
                      prompt_length=P, lengths=lengths, wall_time_s=wall, trace=tr, aux=s.aux, **c)
