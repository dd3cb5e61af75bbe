"""Solving Sudoku with a trained denoiser (or its AR twin) through the one generation loop.

The givens are `given` positions of `generate()` (settled, fed at level 0, as in training), and so is
the record's leading newline (`clean_prompt`: the puzzle corpus keeps it clean in training, and the
grid corpus's random clean positions include it; fed at the sampler's level instead, `llada` solved
54 of 160 selection puzzles rather than 77, docs/results-sudoku.md); every sampler runs unchanged.
The only Sudoku-specific piece is the verifier passed as `stop`: a row finishes as soon as its grid
is complete and breaks no rule, and its NFE stops counting (issue: "a sampler may stop early once
the grid satisfies every constraint").

Selectivity of revisions (SPEC §8.2) from a trace: an overwrite is helpful (wrong -> right),
harmful (right -> wrong) or neutral (wrong -> wrong); "in conflict" when the cell broke a rule just
before it was overwritten. Remasking samplers (`remdm`, `gate:mode=remask`) revise by turning a
digit back into MASK: a remask removes a wrong digit or a right one, and is in conflict or not, in
the same sense (issue 6 asks what each sampler revises, remdm included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ardm.data.sudoku_puzzles import UNITS, conflicts, is_solved, violations
from ardm.generation.loop import generate
from ardm.generation.registry import Sampler

PROMPT = "\n"  # every record starts with a newline (ardm.data.sudoku_corpus)


@dataclass
class Attempt:
    grid: tuple[int, ...]  # 81 digits, 0 where the model wrote something that is not a digit
    solved: bool  # complete, no rule broken, givens kept
    violations: int  # pairs of peers holding the same digit
    nfe: int


class Codec:
    """Digits <-> a model's token ids (records are "\\n" + 81 digits)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.prompt = tokenizer.encode(PROMPT)
        self.ids = [tokenizer.encode(str(d))[0] for d in range(1, 10)]
        table = torch.zeros(tokenizer.vocab_size + 1, dtype=torch.long)  # + MASK -> 0
        for d, i in enumerate(self.ids, start=1):
            table[i] = d
        self.to_digit = table
        self.units = torch.tensor(UNITS)  # [27, 9]

    def given(self, puzzles: Sequence[Sequence[int]]) -> torch.Tensor:
        """[B, 1 + 81] token ids of the givens, -1 at blanks (and at the prompt)."""
        out = torch.full((len(puzzles), len(self.prompt) + 81), -1, dtype=torch.long)
        for b, p in enumerate(puzzles):
            for c, d in enumerate(p):
                if d:
                    out[b, len(self.prompt) + c] = self.ids[d - 1]
        return out

    def digits(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L] token ids -> [B, 81] digits (0: MASK or a non-digit token)."""
        return self.to_digit[x[:, len(self.prompt) :].cpu()]

    def conditioning(self, puzzles: Sequence[Sequence[int]]) -> dict:
        """`generate()`'s conditioning for these puzzles: the newline prompt and the givens, both fed
        clean (level 0), as the puzzle corpus trains them."""
        return {"prompt": torch.tensor(self.prompt), "given": self.given(puzzles), "clean_prompt": True}

    def unit_counts(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 27, 9]: how often each digit appears in each row, column and box."""
        onehot = torch.nn.functional.one_hot(self.digits(x), 10)[..., 1:]  # [B, 81, 9]
        return onehot[:, self.units].sum(2)

    def valid(self, x: torch.Tensor) -> torch.Tensor:
        """[B] bool: every cell holds a digit and every unit holds each digit once."""
        return (self.digits(x) > 0).all(1) & (self.unit_counts(x) == 1).all(2).all(1)


def solve_batch(
    model,
    tokenizer,
    sampler: Sampler,
    puzzles: Sequence[Sequence[int]],
    steps: int,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    stop_early: bool = True,
    trace: bool = False,
    loop: dict | None = None,
) -> tuple[list[Attempt], dict | None]:
    """One attempt per puzzle with `sampler` at budget `steps`; rows use seeds seed + b. `loop`: more
    options of `generate` (a sampler spec's block_size, cache, approximate)."""
    codec = Codec(tokenizer)
    g = generate(
        model,
        sampler,
        length=len(codec.prompt) + 81,
        steps=steps,
        batch=len(puzzles),
        **codec.conditioning(puzzles),
        seed=seed,
        temperature=temperature,
        stop=codec.valid if stop_early else None,
        trace=trace,
        **(loop or {}),
    )
    digits = codec.digits(g.tokens).tolist()
    attempts = []
    for b, p in enumerate(puzzles):
        grid = tuple(digits[b])
        attempts.append(Attempt(grid, is_solved(grid, p), violations(grid), g.nfe_per_sample[b]))
    return attempts, g.trace


def selectivity_counts(
    trace: dict, codec: Codec, puzzles: Sequence[Sequence[int]], solutions: Sequence[Sequence[int]]
) -> Counter:
    """Replay a trace: how many overwrites were helpful / harmful / neutral, how many hit a cell that
    was in conflict just before; how many remasks removed a wrong / right digit and how many of them
    were in conflict; and the conflicting cells seen over all (grid, step) pairs. Counts summed over
    the batch, so the counts of several batches add up."""
    P = trace["prompt_length"]
    grids = [list(p) for p in puzzles]
    table = codec.to_digit.tolist()
    out = Counter({k: 0 for k in ("overwrites", "helpful", "harmful", "neutral", "in_conflict", "remasks",
                                  "remasks_wrong", "remasks_in_conflict", "conflict_cells", "grid_steps",
                                  "open_cells", "open_in_conflict")})
    for rec in trace["records"]:
        for b, grid in enumerate(grids):
            bad = conflicts(grid)
            out["conflict_cells"] += len(bad)
            # the chance level: how many revisable digits (written, not given) were in conflict
            open_cells = [c for c, d in enumerate(grid) if d and not puzzles[b][c]]
            out["open_cells"] += len(open_cells)
            out["open_in_conflict"] += sum(c in bad for c in open_cells)
            for pos, old, new in rec["overwritten"][b]:
                c = pos - P
                right = solutions[b][c]
                out["overwrites"] += 1
                out["in_conflict"] += c in bad
                was, now = table[old] == right, table[new] == right
                out["helpful" if now and not was else "harmful" if was and not now else "neutral"] += 1
            for pos, old in rec["remasked"][b]:
                c = pos - P
                out["remasks"] += 1
                out["remasks_wrong"] += table[old] != solutions[b][c]
                out["remasks_in_conflict"] += c in bad
                grid[c] = 0
            for entry in rec["written"][b] + [[e[0], e[2]] for e in rec["overwritten"][b]]:
                grid[entry[0] - P] = table[entry[1]]
        out["grid_steps"] += len(grids)
    return out


def selectivity_rates(counts: Counter) -> dict[str, float]:
    """The counts plus precision (helpful / overwrites), the share of overwrites in conflict, the
    same two shares for remasks (wrong digits removed, in conflict), the chance level of "in
    conflict" (the share of written, non-given digits in conflict over all grid steps: a reviser that
    picked cells at random would hit conflicts this often) and the mean number of conflicting cells
    per grid and step."""
    n, r = max(counts["overwrites"], 1), max(counts["remasks"], 1)
    return {**counts, "precision": counts["helpful"] / n, "share_in_conflict": counts["in_conflict"] / n,
            "remask_precision": counts["remasks_wrong"] / r,
            "remask_share_in_conflict": counts["remasks_in_conflict"] / r,
            "conflict_base_rate": counts["open_in_conflict"] / max(counts["open_cells"], 1),
            "conflict_cells_per_step": counts["conflict_cells"] / max(counts["grid_steps"], 1)}

