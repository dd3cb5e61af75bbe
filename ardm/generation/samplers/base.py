"""The sampler contract (SPEC §1 "Core interfaces", §6.0): a typed state in, a write set out.

`generate()` owns the loop; a sampler is a small policy with four answers:

    num_steps(n, steps) -> K      validate the step budget for n target positions (ArdmError if unusable)
    init(s)             -> aux    its own per-run state: a dict of [B, ...] tensors (rows independent)
    levels(s)           -> t      per-token noise levels [B, L] fed to the denoiser at step s.k
    step(s)             -> WriteSet   which positions to (re)write this step, and with what

Rows of a batch never interact: every random draw goes through the row's own generator
(`StepState.uniform`, `StepState.sample`), so a batch of B equals B single runs with seeds seed+b.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ardm.errors import ArdmError
from ardm.generation.token_sampling import sample_tokens


@dataclass(frozen=True)
class TokenSampling:
    """How new token ids are drawn from logits: fp64 Gumbel-max (SPEC §6.11); temperature 0 = argmax."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ArdmError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ArdmError(f"top-k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ArdmError(f"top-p must be in (0, 1], got {self.top_p}")


@dataclass(kw_only=True)
class StepState:
    """What a sampler sees at step k (1-based) of K. `logits`, `hidden` and `t` are None when the
    loop asks for `levels` (before the forward pass) and set when it asks for `step`."""

    x: torch.Tensor  # [B, L] current tokens, MASK = mask_id
    k: int
    K: int
    mask_id: int
    prompt_len: int  # the clean prefix x[:, :P]; target positions are P..L-1 (n = L - P)
    settled: torch.Tensor  # [B, L] bool: never rewritten again (prompt + settled by the sampler);
    #                        the positions a KV cache of settled tokens may hold
    active: torch.Tensor  # [B] bool: rows still being generated
    changes: torch.Tensor  # [B, L] long: running count of value changes (reveals, overwrites, remasks)
    last_change: torch.Tensor  # [B, L] long: step of the last change (0: never, e.g. the prompt)
    prev_logits: torch.Tensor | None  # [B, L, V] the previous step's logits (None at k = 1)
    aux: dict[str, Any]  # the sampler's own state, from init() / the last WriteSet.aux
    generators: list[torch.Generator]  # one per row, seeded seed + b
    sampling: TokenSampling = field(default_factory=TokenSampling)
    logits: torch.Tensor | None = None  # [B, L, V] this step's denoiser output (fp32)
    hidden: torch.Tensor | None = None  # [B, L, d]
    t: torch.Tensor | None = None  # [B, L] the levels this step's forward pass used

    @classmethod
    def begin(cls, x: torch.Tensor, *, k: int, K: int, mask_id: int, generators: list[torch.Generator],
              prompt_len: int = 0, settled: torch.Tensor | None = None,
              sampling: TokenSampling | None = None) -> StepState:
        """A state at step k in which nothing has changed yet and only `settled` (default: the prompt)
        is settled: the loop's first step, and gate training's drafts (one row at its own step)."""
        B, L = x.shape
        if settled is None:
            settled = (torch.arange(L, device=x.device) < prompt_len).expand(B, L)
        return cls(x=x, k=k, K=K, mask_id=mask_id, prompt_len=prompt_len, settled=settled,
                   active=torch.ones(B, dtype=torch.bool, device=x.device), changes=torch.zeros_like(x),
                   last_change=torch.zeros_like(x), prev_logits=None, aux={}, generators=generators,
                   sampling=sampling or TokenSampling())

    @property
    def n(self) -> int:
        return self.x.shape[1] - self.prompt_len

    @property
    def masked(self) -> torch.Tensor:  # [B, L]
        return self.x == self.mask_id

    @property
    def target(self) -> torch.Tensor:  # [B, L] positions after the prompt
        tgt = torch.ones_like(self.x, dtype=torch.bool)
        tgt[:, : self.prompt_len] = False
        return tgt

    @property
    def prompt_mask(self) -> torch.Tensor:  # [B, L] the clean prefix
        return ~self.target

    @property
    def committed(self) -> torch.Tensor:  # [B, L] target positions holding a token
        return self.target & ~self.masked

    @property
    def position(self) -> torch.Tensor:  # [L] index within the target span (negative on the prompt)
        return torch.arange(self.x.shape[1], device=self.x.device) - self.prompt_len

    def uniform(self) -> torch.Tensor:
        """U[0, 1) per position, float64, drawn row by row from each row's generator. [B, L]"""
        L = self.x.shape[1]
        u = torch.stack([torch.rand(L, generator=g, dtype=torch.float64) for g in self.generators])
        return u.to(self.x.device)

    def sample(self, logits: torch.Tensor | None = None) -> torch.Tensor:
        """New token ids from `logits` (default: this step's) with the run's temperature/top-k/top-p,
        row by row with each row's generator. [B, L]"""
        logits = self.logits if logits is None else logits
        assert logits is not None, "logits exist only inside step()"
        o = self.sampling
        return torch.stack([sample_tokens(logits[b], g, o.temperature, o.top_k, o.top_p)
                            for b, g in enumerate(self.generators)])

    def probs(self, at: torch.Tensor | None = None) -> torch.Tensor:
        """q = softmax(Z) in float64 (the MASK logit is already excluded by the model). [B, L, V];
        with `at` [B, L] bool, only those positions' rows, [N, V] in row-major order (the same values:
        a float64 softmax of all of [B, L, V] was most of a llada step at 6,000 tokens, docs/speed.md)."""
        assert self.logits is not None, "logits exist only inside step()"
        logits = self.logits if at is None else self.logits[at]
        return logits.softmax(-1, dtype=torch.float64)  # the same values as .double().softmax, no copy


@dataclass
class WriteSet:
    """A sampler's answer. The loop writes `values` at `positions` (never at settled positions nor in
    finished rows), then marks `settle` as settled and stores `aux` as the sampler's new state."""

    positions: torch.Tensor  # [B, L] bool
    values: torch.Tensor  # [B, L] token ids; MASK allowed (remasking samplers)
    settle: torch.Tensor | None = None  # [B, L] bool: positions settled from now on
    done: torch.Tensor | None = None  # [B] bool: rows that need no further step
    gate: torch.Tensor | None = None  # [B, L] overwrite probabilities, for the trace (gate samplers)
    aux: dict[str, Any] | None = None  # the sampler's updated state (None: unchanged)


SUGGEST = {"causal": "ar", "armd": "strided"}  # the sampler for each non-denoiser model


@dataclass
class NoOptions:
    """This sampler has no options."""


class Sampler:
    """Base class of every sampler. Subclasses set `name`, `Options` and implement `step`."""

    name: ClassVar[str] = "base"
    Options: ClassVar[type] = NoOptions
    attention: ClassVar[str] = "bidirectional"  # the model kind the sampler needs
    noise_kinds: ClassVar[tuple[str, ...] | None] = None  # training noise it needs (None: any)

    def __init__(self, options: Any = None, **kwargs: Any):
        if options is None:
            known = [f.name for f in dataclasses.fields(self.Options)]
            unknown = sorted(set(kwargs) - set(known))
            if unknown:
                raise ArdmError(f"sampler {self.name!r} has no option {', '.join(unknown)} "
                                f"(options: {', '.join(known) or 'none'})")
            options = self.Options(**kwargs)
        elif kwargs:
            raise ArdmError("pass either an options object or keyword options, not both")
        self.options = options

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    def num_steps(self, n: int, steps: int) -> int:
        """The number of steps K to run for n target positions; raise ArdmError if unusable."""
        if steps < 1:
            raise ArdmError(f"steps must be >= 1, got {steps}")
        return steps

    def check_model(self, attention: str, noise_kind: str | None = None) -> None:
        """Raise ArdmError if the sampler cannot run on this kind of model."""
        if attention == "block_causal":  # a denoiser, run block by block by the loop (SPEC §11.6)
            attention = "bidirectional"
        if attention != self.attention:
            raise ArdmError(f"sampler {self.name!r} needs a {self.attention} model, this one is {attention} "
                            f"(use {SUGGEST.get(attention, 'a diffusion sampler, e.g. mdlm')})")
        if noise_kind is not None and self.noise_kinds is not None and noise_kind not in self.noise_kinds:
            raise ArdmError(f"sampler {self.name!r} needs a denoiser trained with "
                            f"{' or '.join(self.noise_kinds)} noise, this one used {noise_kind!r}")

    def init(self, s: StepState) -> dict[str, Any]:
        return {}

    def levels(self, s: StepState) -> torch.Tensor:
        """Default: the flat schedule (SPEC §3.1) level 1 - (k-1)/K at every position, as in
        flat-schedule training where all positions of a sequence share t."""
        return torch.full(s.x.shape, 1.0 - (s.k - 1) / s.K, device=s.x.device)

    def queries(self, s: StepState) -> torch.Tensor | None:
        """[L] bool: the positions whose logits `step` reads at this step, so that a cached pass may
        compute only those (ARMD's cache); None: all of them (every sampler but `strided`)."""
        return None

    def step(self, s: StepState) -> WriteSet:
        raise NotImplementedError


# ---- small pure helpers shared by the samplers -------------------------------------------------


def linear_times(k: int, K: int, eps: float = 0.0) -> tuple[float, float]:
    """(t, s) of step k on the grid t_j = 1 - j (1 - eps)/K (SPEC §6.3), for linear alpha(t) = 1 - t."""
    return 1.0 - (k - 1) * (1.0 - eps) / K, 1.0 - k * (1.0 - eps) / K


def reveal_probability(t: torch.Tensor | float, s: torch.Tensor | float) -> torch.Tensor:
    """Absorbing reveal probability for a move t -> s with alpha = 1 - t (SPEC §3): (t - s)/t,
    1 when s = 0 (or t = 0), 0 when s = t."""
    t, s = torch.as_tensor(t, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
    return torch.where((s <= 0) | (t <= 0), torch.ones_like(t), ((t - s) / t.clamp_min(1e-12)).clamp(0, 1))


def reveal_fraction(t: float, s: float) -> float:
    """`reveal_probability` of scalar levels as a Python float (the same double arithmetic, none of
    its tensor operations: a batch-1 step is bound by the number of operations, docs/speed.md)."""
    return 1.0 if s <= 0 or t <= 0 else min(max((t - s) / max(t, 1e-12), 0.0), 1.0)


def top_n_mask(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per row, the `counts[b]` positions with the highest finite scores (ties: lower index). [B, L]"""
    order = scores.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return (rank < counts.to(scores.device)[:, None]) & torch.isfinite(scores)


def sample_from(s: StepState, argmax: bool) -> torch.Tensor:
    """Candidate ids: argmax of this step's logits, or a draw with the run's sampling options."""
    assert s.logits is not None, "logits exist only inside step()"
    return s.logits.argmax(-1) if argmax else s.sample()
