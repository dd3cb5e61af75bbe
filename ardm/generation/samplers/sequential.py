"""One new position per step, left to right (SPEC §6.1): `l2r` on a diffusion denoiser and `ar`
(true autoregressive decoding) on a causal model. Both settle each token as they write it and
never overwrite, so they need exactly K = n steps (n = length - prompt length)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler, StepState, WriteSet


class _OnePerStep(Sampler):
    def num_steps(self, n: int, steps: int) -> int:
        super().num_steps(n, steps)
        if steps != n:
            raise ArdmError(f"sampler {self.name!r} writes one position per step: it needs exactly "
                            f"steps = length - prompt length = {n}, got {steps}")
        return n

    @staticmethod
    def next_position(s: StepState) -> torch.Tensor:
        """The leftmost MASK of each row (L when there is none). [B]"""
        L = s.x.shape[1]
        idx = torch.where(s.masked, torch.arange(L, device=s.x.device), L)
        return idx.min(dim=1).values

    @staticmethod
    def write_one(s: StepState, pos: torch.Tensor, values: torch.Tensor) -> WriteSet:
        B, L = s.x.shape
        ok = pos < L
        rows = torch.arange(B, device=s.x.device)[ok]
        positions = torch.zeros_like(s.masked)
        positions[rows, pos[ok]] = True
        out = torch.full_like(s.x, s.mask_id)
        out[rows, pos[ok]] = values[ok]
        # a row whose last MASK is written now is finished (given cells may leave fewer than K MASKs)
        return WriteSet(positions, out, settle=positions, done=~(s.masked & ~positions).any(1))


class L2RSampler(_OnePerStep):
    """Quenched-AR schedule (SPEC §3.2) on a bidirectional denoiser: step k writes target position
    k-1 with a draw from q at that position. Levels: 0 on written tokens, 1 on MASKs (= row k-1 of
    the quenched-AR hyperschedule)."""

    name = "l2r"

    def levels(self, s: StepState) -> torch.Tensor:
        return s.masked.float()

    def step(self, s: StepState) -> WriteSet:
        pos = self.next_position(s)
        B, L = s.x.shape
        assert s.logits is not None
        logits = s.logits[torch.arange(B), pos.clamp(max=L - 1)]  # [B, V]: q at the written position
        return self.write_one(s, pos, self._draw(s, logits))

    @staticmethod
    def _draw(s: StepState, logits: torch.Tensor) -> torch.Tensor:
        return s.sample(logits[:, None, :])[:, 0]


class ARSampler(L2RSampler):
    """True autoregressive decoding with a causal model: the logits at position i predict token
    i + 1, so step k writes position P + k - 1 from the logits at P + k - 2 (needs a prompt)."""

    name = "ar"
    attention = "causal"

    def levels(self, s: StepState) -> torch.Tensor:
        return torch.zeros(s.x.shape, device=s.x.device)

    def step(self, s: StepState) -> WriteSet:
        pos = self.next_position(s)
        B, L = s.x.shape
        assert s.logits is not None
        logits = s.logits[torch.arange(B), (pos - 1).clamp(0, L - 1)]
        return self.write_one(s, pos, self._draw(s, logits))


@dataclass
class StridedOptions:
    streams: int = 4  # S parallel streams (SPEC §5.3): NFE = n / S

    def __post_init__(self) -> None:
        if self.streams < 1:
            raise ArdmError(f"strided: streams must be >= 1, got {self.streams}")


class StridedSampler(Sampler):
    """ARMD strided parallel generation (SPEC §5.3) on an `armd` model: the n target positions form
    S segments of m = n / S; step j writes position j - 1 of every segment (a draw from its query
    stream, which sees every token written before). Each stream is locally left to right; NFE = n / S,
    and S = 1 is AR decoding. Levels are ARMD block ids: 0 on the prompt, the writing step on
    written tokens, the current step k on MASKs (whose queries see the blocks before k)."""

    name = "strided"
    attention = "armd"
    Options = StridedOptions

    def num_steps(self, n: int, steps: int) -> int:
        super().num_steps(n, steps)
        S = self.options.streams
        if n % S:
            raise ArdmError(f"strided: {S} streams must divide the {n} generated positions "
                            "(length - prompt)")
        if steps != n // S:
            raise ArdmError(f"strided: {S} streams over {n} positions take exactly steps = {n // S}, "
                            f"got {steps}")
        return steps

    def levels(self, s: StepState) -> torch.Tensor:
        return torch.where(s.masked, float(s.k), s.last_change.float())

    def queries(self, s: StepState) -> torch.Tensor:
        """This step's position in each stream: all an ARMD cache needs to compute (S queries)."""
        pos = s.position
        return (pos >= 0) & (pos % (s.n // self.options.streams) == s.k - 1)

    def step(self, s: StepState) -> WriteSet:
        write = self.queries(s)[None] & s.masked
        return WriteSet(write, s.sample(), settle=write, done=~(s.masked & ~write).any(1))
