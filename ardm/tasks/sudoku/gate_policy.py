"""Sudoku as the gate's long-horizon task (SPEC §11.3, issue 15): the reward is exact correctness.

Each policy update solves batch / group puzzles, `group` times each (RLOO over the rollouts of one
puzzle, GRPO-style, so a hard puzzle's failures are not blamed on the gate); the reward of a final
grid is 1 if it is solved (complete, no rule broken: the givens are settled, so a valid grid is THE
solution of a unique puzzle) minus CONFLICT_COST per pair of equal digits in a unit, a dense hint
among the unsolved ones. Validation rollouts (seeds from VAL_SEED) solve the first `held_out`
puzzles once each; training draws the others, by the rollouts' seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from ardm.errors import ArdmError
from ardm.generation.gate.policy import VAL_SEED, Givens, Reward
from ardm.tasks.sudoku.solving import Codec

CONFLICT_COST = 0.02  # per pair of equal digits in a row, column or box of an unsolved grid


def sudoku_episodes(tokenizer, puzzles: Sequence[Sequence[int]], group: int,
                    held_out: int) -> tuple[Givens, Reward]:
    """(givens, reward) for ardm.generation.gate.policy.train_policy. Training batches: rows 0..group-1
    share a puzzle, the next group the next, drawn with random.Random(seed) from puzzles[held_out:]."""
    if len(puzzles) <= held_out:
        raise ArdmError(f"the gate's Sudoku stage needs more than {held_out} puzzles (the first {held_out} "
                        f"validate), got {len(puzzles)}")
    codec = Codec(tokenizer)
    train = list(puzzles[held_out:])

    def givens(seed: int, batch: int) -> torch.Tensor:
        if seed >= VAL_SEED:
            return codec.given(list(puzzles[:batch]))
        rng = random.Random(seed)
        k = group or 1
        chosen = [train[rng.randrange(len(train))] for _ in range(batch // k)]
        return codec.given([p for p in chosen for _ in range(k)])

    def reward(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        solved = codec.valid(tokens).double()
        per_unit = codec.unit_counts(tokens).double()  # [B, 27, 9]
        pairs = (per_unit * (per_unit - 1) / 2).sum((1, 2))
        return {"reward": solved - CONFLICT_COST * pairs * (1 - solved), "solved": solved,
                "conflict_pairs": pairs}

    return givens, reward
