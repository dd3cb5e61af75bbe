"""The one generation loop (SPEC §6.0; STYLE "one loop, many policies").

`generate()` owns the state, the denoiser calls, NFE counting, prompts, batching, seeds, EOS,
progress and tracing; a sampler (ardm.generation.samplers) is a small policy that, given this step's logits,
says which positions to (re)write and with what:

    state = init ; for k in 1..K: t = sampler.levels(state) ; Z, H = f(x, t) [1 NFE]
                                  W = sampler.step(state + Z, H) ; x[W \\ settled] = values
    final: if a MASK remains (before the first EOS), one more pass fills it by argmax (+1 NFE)

With block_size (or a block_causal model) this runs block by block, the sampler seeing the current
block (semi-AR, SPEC §11.6); the denoiser calls go through `ardm.generation.blocks.Passes`, which
keeps the KV cache of settled blocks (`StepState.settled`: the loop never writes there).
Rows never interact: each has its own generator seeded seed + b, so a batch of B equals B single
runs with seeds seed..seed+B-1.
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
from ardm.generation.blocks import Passes, block_steps
from ardm.generation.samplers.base import Sampler, StepState, TokenSampling, WriteSet

__all__ = ["generate", "Generation"]

COUNTERS = ("nfe_per_sample", "writes", "overwrites_selected", "overwrites_effective", "remasks")


@dataclass
class Generation:
    """The result of one `generate` call. Counts are per sample (lists of length B)."""

    tokens: torch.Tensor  # [B, L] prompt + generated tokens; after the first EOS: pad_id
    nfe: int  # denoiser passes over the batch (SPEC §6.10: a batched pass counts 1 per sequence)
    nfe_per_sample: list[int]  # passes each row took part in (= the NFE of its single run)
    token_forwards: list[int]  # positions recomputed per row (SPEC §6.10; L per full pass, fewer cached)
    steps: int  # K
    prompt_length: int
    lengths: list[int]  # generated tokens per row, through its first EOS (all n without EOS)
    writes: list[int]  # reveals: MASK -> token
    overwrites_selected: list[int]  # visible tokens the sampler chose to rewrite
    overwrites_effective: list[int]  # ... whose value changed (to another token, or to MASK)
    remasks: list[int]  # token -> MASK (included in overwrites_effective)
    wall_time_s: float
    trace: dict | None = None  # per-step writes/overwrites (JSON-ready), when asked for
    cache_drift: list[float] | None = None  # approximate cache: per cached step, KL(full || cached)
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
    if eos_id is None:  # no EOS, no early end (and no tensor work: a batch-1 step is op-bound)
        return torch.zeros(s.x.shape[0], dtype=torch.bool, device=s.x.device)
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
    counts[1:5] += torch.stack((reveal, selected, changed, remask)).sum(2).cpu()
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


@dataclass
class _Run:
    """The state of one `generate` call across its blocks: full-length [B, L] tensors and counters."""

    x: torch.Tensor
    settled: torch.Tensor
    fixed: torch.Tensor  # given positions, fed at level 0
    changes: torch.Tensor
    last_change: torch.Tensor
    active: torch.Tensor
    counts: torch.Tensor  # [len(COUNTERS), B]
    forwards: torch.Tensor  # [B] token-forwards: positions recomputed while the row was active
    generators: list[torch.Generator]
    prompt_len: int
    clean_prompt: bool = False  # the prompt at level 0 (a seq2seq source)
    records: list = field(default_factory=list)
    nfe: int = 0
    aux: dict = field(default_factory=dict)


def _block(run: _Run, model: Denoiser, sampler: Sampler, passes: Passes, window: tuple[int, int], K: int,
           sampling: TokenSampling, eos_id: int | None, stop, progress: bool, trace: bool) -> None:
    """Run the sampler for K steps on block [lo, hi) (the whole sequence when unblocked), its part of
    the prompt as its prompt, then fill any MASK left before the first EOS by argmax (MDLM noise
    removal, +1 NFE). The sampler sees the block alone; the passes see what precedes it."""
    lo, hi = window
    P = max(run.prompt_len - lo, 0)
    B = run.x.shape[0]
    device = run.x.device
    zero_t = run.fixed[:, lo:hi]  # givens at level 0; a block_causal model's prompt too (clean copy)
    if model.cfg.attention == "block_causal" or run.clean_prompt:
        zero_t = zero_t | (torch.arange(hi - lo, device=device) < P)
    s = StepState.begin(run.x[:, lo:hi], k=1, K=K, mask_id=model.cfg.vocab_size, prompt_len=P,
                        settled=run.settled[:, lo:hi], sampling=sampling, generators=run.generators)
    s = replace(s, active=run.active, changes=run.changes[:, lo:hi], last_change=run.last_change[:, lo:hi])
    s = replace(s, aux=sampler.init(s))
    passes.begin(lo, hi, run.x)
    finished = torch.zeros(B, dtype=torch.bool, device=device)

    def forward(state: StepState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = torch.where(zero_t, 0.0, sampler.levels(state))
        logits, hidden, done = passes(state.x, t, sampler.queries(state))
        run.nfe += 1
        run.counts[0] += state.active.cpu()
        run.forwards += done * state.active.cpu()
        return logits, hidden, t

    def record(rec: dict | None, **extra) -> None:
        if trace and rec is not None:
            tag = {"block": [lo, hi]} if lo or hi < run.x.shape[1] else {}
            run.records.append({**_shift(rec, lo), **tag, **extra})

    for k in tqdm(range(1, K + 1), desc=sampler.name, disable=not progress, leave=False):
        s = replace(s, k=k, logits=None, hidden=None, t=None)
        logits, hidden, t = forward(s)
        w = sampler.step(replace(s, logits=logits, hidden=hidden, t=t))
        s, rec = _apply(s, w, run.counts, trace)
        record(rec)
        # w.done ends the row's block; stop and a settled EOS end the row
        over = _eos_settled(s, eos_id) & s.active
        if stop is not None:
            full = torch.cat([run.x[:, :lo], s.x, run.x[:, hi:]], 1)
            over = over | (stop(full).to(device) & s.active)
        finished |= over
        done = over if w.done is None else over | w.done.to(device)
        s = replace(s, prev_logits=logits, active=s.active & ~done)
        if not s.active.any():
            break
    positions = torch.arange(hi - lo, device=device)
    need = (s.x == s.mask_id) & (positions[None] < _first_eos(s.x, P, eos_id)[:, None]) & s.target
    if need.any() and not model.cfg.causal:  # MDLM "noise removal": argmax fill, +1 NFE
        last = replace(s, k=K, active=need.any(1))
        logits, _, _ = forward(last)
        s, rec = _apply(replace(last, k=K + 1), WriteSet(need, logits.argmax(-1)), run.counts, trace)
        record(rec, final_fill=True)
    # the block is complete: store it, settled (what the next block's cache holds)
    run.x[:, lo:hi], run.changes[:, lo:hi], run.last_change[:, lo:hi] = s.x, s.changes, s.last_change
    run.settled[:, lo:hi] = s.settled | (s.target & (s.x != s.mask_id))
    run.active, run.aux = run.active & ~finished & ~_eos_settled(s, eos_id), s.aux


def _shift(rec: dict, lo: int) -> dict:
    """A trace record of a block with its positions made absolute (indices into the sequence)."""
    if not lo:
        return rec
    out = dict(rec)
    for key in ("written", "overwritten", "remasked"):
        out[key] = [[[p + lo, *rest] for p, *rest in row] for row in rec[key]]
    return out


@torch.no_grad()
def generate(model: Denoiser, sampler: Sampler, *, length: int, steps: int, batch: int = 1,
             prompt: torch.Tensor | None = None, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, eos_id: int | None = None, pad_id: int | None = None,
             given: torch.Tensor | None = None, stop: Callable[[torch.Tensor], torch.Tensor] | None = None,
             progress: bool = False, trace: bool = False, block_size: int = 0,
             cache: str = "none", approximate: bool = False, cache_drift: bool = False,
             clean_prompt: bool = False) -> Generation:
    """Run `sampler` for (up to) K steps from an all-MASK target after a fixed prompt.

    prompt: [P] (shared) or [batch, P] clean prefix, never rewritten. eos_id: a row is finished once
    every position up to its first EOS is settled; output positions after the first EOS are
    pad_id (default eos_id). given: [L] or [B, L] ids fixed anywhere after the prompt (-1: free),
    settled from the start and fed at noise level 0, as conditioning positions are in training (e.g.
    Sudoku givens). stop(x [B, L]) -> [B] bool: rows it marks finish after the current step (their
    NFE stops counting), e.g. a verifier that accepts the answer. trace: record the starting tokens
    (prompt and givens, `initial`) and per step which positions were written / overwritten /
    remasked (and the gate's probabilities) in `Generation.trace` (ardm.generation.trace writes it
    to a file). block_size W > 0: semi-autoregressive blocks of W positions (W divides the
    length), K / #blocks steps each (ardm.generation.blocks; a block_causal model always runs on its
    own blocks). cache="exact": a block_causal model computes settled blocks once (SPEC §11.6);
    "prefix" / "dual": Fast-dLLM's approximate cache of a bidirectional model, only with
    approximate=True; cache_drift: also measure its per-step KL to the full pass (`Generation.cache_drift`).
    clean_prompt: feed the prompt at noise level 0 whatever the sampler's levels, as a seq2seq prefix
    denoiser saw its source in training (SPEC §11.7; default: the sampler's levels, as flat-schedule
    language models saw a prompt).
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
    windows, Ks = block_steps(model.cfg, sampler, L, P, steps, block_size, cache, approximate)
    positions = torch.arange(L, device=device)
    run = _Run(x=torch.where(fixed, g, x), settled=(positions < P).expand(B, L) | fixed, fixed=fixed,
               changes=torch.zeros_like(x), last_change=torch.zeros_like(x),
               active=torch.ones(B, dtype=torch.bool, device=device),
               counts=torch.zeros(len(COUNTERS), B, dtype=torch.long),
               forwards=torch.zeros(B, dtype=torch.long),
               generators=[torch.Generator().manual_seed(seed + b) for b in range(B)], prompt_len=P,
               clean_prompt=clean_prompt)
    initial = _rows(run.x != model.cfg.vocab_size, run.x) if trace else None  # prompt + givens, for a viewer
    passes = Passes(model, cache, drift=cache_drift)
    for window, K in zip(windows, Ks):
        if run.active.any():
            _block(run, model, sampler, passes, window, K, sampling, eos_id, stop, progress, trace)
    first = _first_eos(run.x, P, eos_id)
    pad = eos_id if pad_id is None else pad_id
    tokens = run.x if pad is None else torch.where(positions[None] > first[:, None], pad, run.x)
    c = {name: run.counts[j].tolist() for j, name in enumerate(COUNTERS)}
    tr = None
    if trace:
        tr = {"sampler": sampler.name, "options": asdict(sampler.options), "length": L, "prompt_length": P,
              "steps": sum(Ks), "positions": "absolute indices into the sequence (prompt included)",
              "initial": initial, "records": run.records}
    lengths = (first.clamp(max=L - 1) - P + 1).tolist() if eos_id is not None else [L - P] * B
    wall = round(time.perf_counter() - start, 4)
    return Generation(tokens=tokens, nfe=run.nfe, token_forwards=run.forwards.tolist(), steps=sum(Ks),
                      prompt_length=P, lengths=lengths, wall_time_s=wall, trace=tr, aux=run.aux,
                      cache_drift=passes.drift, **c)
