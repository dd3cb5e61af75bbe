"""Threshold token editing (SPEC §6.7; LLaDA2.1 arXiv 2602.08676, rule of
`sgl-project/sglang:python/sglang/srt/dllm/algorithm/joint_threshold.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ardm.errors import ArdmError
from ardm.generation.samplers.base import Sampler, StepState, WriteSet, sample_from, top_n_mask


@dataclass
class EditOptions:
    threshold: float = 0.5  # tau_M2T: reveal MASKs whose candidate has q > threshold
    edit_threshold: float = 0.0  # tau_T2T: overwrite a token whose differing candidate has q > this
    max_post_edit_steps: int = 16  # edit-only steps after a block has no MASK
    block_length: int = 0  # 0 = the whole target is one block
    # Added: candidates are drawn with the run's temperature / top-k / top-p like every other
    # sampler's values (temperature 0 is argmax); sample=false takes the argmax at any temperature,
    # the rule of the reference code's greedy path.
    sample: bool = True
    # Added: reveal at least ceil(MASKs left / steps left) per step, so that a budget K < n is spent
    # on the sampler's own steps instead of leaving MASKs to the loop's argmax fill pass. Without
    # it a weak denoiser (few q > threshold) reveals one token per step. Inert when K >= n.
    pace: bool = True

    def __post_init__(self) -> None:
        for name in ("threshold", "edit_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ArdmError(f"edit: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_post_edit_steps < 0:
            raise ArdmError(f"edit: max_post_edit_steps must be >= 0, got {self.max_post_edit_steps}")
        if self.block_length < 0:
            raise ArdmError(f"edit: block_length must be >= 0 (0 = one block), got {self.block_length}")


class EditSampler(Sampler):
    """Per row, the current block; each step: x_hat drawn from Z with the run's temperature (argmax
    with sample=false or temperature 0), p_i = q_i(x_hat_i).
    M2T: reveal MASKs of the block with p > threshold, or else its single most confident MASK;
    with pace, at least ceil(MASKs left in the row / steps left) of the block's most confident.
    T2T: overwrite visible non-prompt tokens of the block with x_hat where x_hat != x and
    p > edit_threshold. A step that starts with no MASK in the block is an edit-only step; past
    max_post_edit_steps of them, or when a step writes nothing, the block is done: its tokens are
    settled and the row moves to the next block (finished after the last). K is a budget: a row
    stops early when done; MASKs left when K runs out are filled by the loop's final pass."""

    name = "edit"
    Options = EditOptions

    def init(self, s: StepState) -> dict:
        B = s.x.shape[0]
        return {"block": torch.zeros(B, dtype=torch.long, device=s.x.device),
                "post_edit": torch.zeros(B, dtype=torch.long, device=s.x.device)}

    def step(self, s: StepState) -> WriteSet:
        o = self.options
        width = o.block_length or s.n
        block, post = s.aux["block"], s.aux["post_edit"]
        in_block = (s.position[None, :] // width) == block[:, None]  # [B, L]
        in_block &= s.target
        x_hat = sample_from(s, argmax=not o.sample)
        p = s.probs().gather(-1, x_hat[..., None])[..., 0]
        masked = s.masked & in_block
        has_mask = masked.any(1)
        post = post + (~has_mask).long()
        exhausted = ~has_mask & (post > o.max_post_edit_steps)
        conf = torch.where(masked, p, float("-inf"))
        m2t = masked & (p > o.threshold)
        m2t |= top_n_mask(conf, self._floor(s, m2t, has_mask))  # force one (or the pace) if too few pass
        t2t = s.committed & in_block & ~s.settled & (x_hat != s.x) & (p > o.edit_threshold)
        write = (m2t | t2t) & ~exhausted[:, None]
        block_done = ~write.any(1) & ~has_mask  # nothing written (or edit budget spent): block ends
        settle = in_block & block_done[:, None]
        n_blocks = -(-s.n // width)
        new_block = block + block_done.long()
        post = torch.where(block_done, 0, post)
        return WriteSet(write, x_hat, settle=settle, done=new_block >= n_blocks,
                        aux={"block": new_block, "post_edit": post})

    def _floor(self, s: StepState, m2t: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
        """Per row, how many of the block's most confident MASKs to reveal at least: one when none
        passes the threshold; with pace, ceil(all MASKs of the row / steps left), so the row's MASKs
        are gone by step K. [B] long"""
        floor = has_mask.long()
        if self.options.pace:
            left = (s.masked & s.target).sum(1)
            floor = torch.maximum(floor, -(-left // (s.K - s.k + 1)))
        return torch.where(has_mask, floor, 0)
