"""Synthetic training text of solved Sudoku grids: `--data sudoku:N[:SEED]` (SPEC §8.1).

Each record is a newline followed by the 81 digits of a solved grid, row-major (82 characters), so
a model reads "\\n" + cells and a sampler is prompted with "\\n". Grids are random solutions found by
randomized backtracking (ardm.sudoku.puzzles.random_solution), each expanded by random
validity-preserving symmetries (digit relabelling, row / column permutations within bands /
stacks, band / stack permutations, transposition), so the model cannot learn one base pattern.
Deterministic by seed; the last val_fraction of the records is the validation split.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from ..data import Corpus
from ..errors import ArdmError

RECORD_LEN = 82  # "\n" + 81 cells
BASE_GRIDS = 500  # distinct backtracking solutions; the rest are their symmetric images


def _perm9(rng: np.random.Generator, num: int) -> np.ndarray:
    """[num, 9] random permutations of 0..8 that keep the three bands (or stacks) of three intact."""
    bands = rng.random((num, 3)).argsort(1)
    within = rng.random((num, 3, 3)).argsort(2)
    return (3 * bands[:, :, None] + within).reshape(num, 9)


def transform(grids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random symmetries of solved grids [N, 9, 9] (values 1..9): each is still a valid solution."""
    num = len(grids)
    digits = np.concatenate([np.zeros((num, 1), dtype=np.int64), rng.random((num, 9)).argsort(1) + 1], 1)
    g = np.take_along_axis(digits, grids.reshape(num, 81), 1).reshape(num, 9, 9)
    g = np.take_along_axis(g, _perm9(rng, num)[:, :, None].repeat(9, 2), 1)  # rows
    g = np.take_along_axis(g, _perm9(rng, num)[:, None, :].repeat(9, 1), 2)  # columns
    flip = rng.random(num) < 0.5
    g[flip] = g[flip].transpose(0, 2, 1)
    return g


def solved_grids(num: int, seed: int) -> np.ndarray:
    """[num, 81] solved grids (values 1..9), deterministic by seed."""
    from .puzzles import random_solution

    py_rng = random.Random(seed)
    bases = np.array([random_solution(py_rng) for _ in range(min(num, BASE_GRIDS))]).reshape(-1, 9, 9)
    rng = np.random.default_rng(seed)
    return transform(bases[np.arange(num) % len(bases)], rng).reshape(num, 81)


def sudoku_corpus(spec: str, val_fraction: float) -> Corpus:
    """`sudoku:N[:SEED]` -> a Corpus of N records, split by whole records."""
    parts = spec.split(":")[1:]
    try:
        num, seed = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (IndexError, ValueError):
        raise ArdmError(f"Sudoku corpus must be written sudoku:N or sudoku:N:SEED, got {spec!r}") from None
    if len(parts) > 2 or num < 20:
        raise ArdmError(f"Sudoku corpus {spec!r}: need sudoku:N[:SEED] with N >= 20 grids")
    grids = solved_grids(num, seed)
    text = np.concatenate([np.full((num, 1), ord("\n")), grids + ord("0")], 1).astype(np.uint8)
    cut = max(1, min(num - 1, round(num * (1.0 - val_fraction))))
    train, val = text[:cut].tobytes().decode(), text[cut:].tobytes().decode()
    digest = hashlib.sha256((train + val).encode()).hexdigest()
    return Corpus(train, val, spec, digest)
