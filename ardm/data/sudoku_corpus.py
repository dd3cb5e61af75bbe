"""Synthetic training text of solved Sudoku grids: `--data sudoku:N[:SEED]` (SPEC §8.1).

Each record is a newline followed by the 81 digits of a solved grid, row-major (82 characters), so
a model reads "\\n" + cells and a sampler is prompted with "\\n". Grids are random solutions found by
randomized backtracking (ardm.data.sudoku_puzzles.random_solution), each expanded by random
validity-preserving symmetries (digit relabelling, row / column permutations within bands /
stacks, band / stack permutations, transposition), so the model cannot learn one base pattern.
Deterministic by seed; the last val_fraction of the records is the validation split.

`--data sudoku-puzzles:N[:SEED]` has the same records, built from unique puzzles instead: the corpus
then also marks each record's givens, which training keeps clean, so every training example has
exactly one answer. Building its 2,000 base puzzles takes about two minutes.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from ardm.data.corpus import Corpus
from ardm.errors import ArdmError

RECORD_LEN = 82  # "\n" + 81 cells
BASE_GRIDS = 500  # distinct backtracking solutions; the rest are their symmetric images
BASE_PUZZLES = 2000  # distinct greedy minimal puzzles for sudoku-puzzles:N


def _perm9(rng: np.random.Generator, num: int) -> np.ndarray:
    """[num, 9] random permutations of 0..8 that keep the three bands (or stacks) of three intact."""
    bands = rng.random((num, 3)).argsort(1)
    within = rng.random((num, 3, 3)).argsort(2)
    return (3 * bands[:, :, None] + within).reshape(num, 9)


def transform(grids: np.ndarray, rng: np.random.Generator, *also: np.ndarray) -> np.ndarray | tuple:
    """Random symmetries of solved grids [N, 9, 9] (values 1..9): each is still a valid solution.

    Arrays in `also` (puzzles [N, 9, 9], 0 for a blank) get the same symmetry per row, so a puzzle
    stays the puzzle of its transformed solution and keeps its unique solution; then a tuple is
    returned."""
    num = len(grids)
    digits = np.concatenate([np.zeros((num, 1), dtype=np.int64), rng.random((num, 9)).argsort(1) + 1], 1)
    rows, cols = _perm9(rng, num), _perm9(rng, num)
    flip = rng.random(num) < 0.5

    def apply(g: np.ndarray) -> np.ndarray:
        g = np.take_along_axis(digits, g.reshape(num, 81), 1).reshape(num, 9, 9)  # 0 stays 0
        g = np.take_along_axis(g, rows[:, :, None].repeat(9, 2), 1)
        g = np.take_along_axis(g, cols[:, None, :].repeat(9, 1), 2)
        g[flip] = g[flip].transpose(0, 2, 1)
        return g

    return tuple(apply(g) for g in (grids, *also)) if also else apply(grids)


def solved_grids(num: int, seed: int) -> np.ndarray:
    """[num, 81] solved grids (values 1..9), deterministic by seed."""
    from ardm.data.sudoku_puzzles import random_solution

    py_rng = random.Random(seed)
    bases = np.array([random_solution(py_rng) for _ in range(min(num, BASE_GRIDS))]).reshape(-1, 9, 9)
    rng = np.random.default_rng(seed)
    grids = transform(bases[np.arange(num) % len(bases)], rng)
    assert isinstance(grids, np.ndarray)
    return grids.reshape(num, 81)


def puzzle_grids(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """([num, 81] solutions, [num, 81] puzzles with 0 for a blank): every puzzle has a unique solution.

    BASE_PUZZLES greedy minimal puzzles (ardm.data.sudoku_puzzles.minimal_puzzle, 22-26 givens, about 0.06 s
    each), each expanded by random symmetries, which keep a solution unique."""
    from ardm.data.sudoku_puzzles import minimal_puzzle, random_solution

    py_rng = random.Random(seed)
    bases = [random_solution(py_rng) for _ in range(min(num, BASE_PUZZLES))]
    puzzles = [minimal_puzzle(b, py_rng) for b in bases]
    index = np.arange(num) % len(bases)
    rng = np.random.default_rng(seed)
    base_grids, base_puzzles = np.array(bases).reshape(-1, 9, 9), np.array(puzzles).reshape(-1, 9, 9)
    sol, puz = transform(base_grids[index], rng, base_puzzles[index])
    return sol.reshape(num, 81), puz.reshape(num, 81)


def _parse_spec(spec: str) -> tuple[int, int]:
    name, *parts = spec.split(":")
    try:
        num, seed = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (IndexError, ValueError):
        raise ArdmError(f"Sudoku corpus must be written {name}:N or {name}:N:SEED, got {spec!r}") from None
    if len(parts) > 2 or num < 20:
        raise ArdmError(f"Sudoku corpus {spec!r}: need {name}:N[:SEED] with N >= 20 grids")
    return num, seed


def sudoku_corpus(spec: str, val_fraction: float) -> Corpus:
    """`sudoku:N[:SEED]` -> a Corpus of N solved grids, split by whole records.

    `sudoku-puzzles:N[:SEED]` -> the same records, plus per-character clean masks that mark each
    record's newline and the givens of a unique puzzle of it (`puzzle_grids`): training then keeps
    those clean (with more solution cells, up to data.clean_max in all: DiffusionObjective.clean_positions),
    so every example has exactly one answer."""
    num, seed = _parse_spec(spec)
    if spec.startswith("sudoku-puzzles:"):
        grids, puzzles = puzzle_grids(num, seed)
        clean = np.concatenate([np.ones((num, 1), dtype=bool), puzzles > 0], 1).reshape(-1)
    else:
        grids, clean = solved_grids(num, seed), None
    text = np.concatenate([np.full((num, 1), ord("\n")), grids + ord("0")], 1).astype(np.uint8)
    cut = max(1, min(num - 1, round(num * (1.0 - val_fraction))))
    train, val = text[:cut].tobytes().decode(), text[cut:].tobytes().decode()
    digest = hashlib.sha256((train + val).encode())
    if clean is None:
        return Corpus(train, val, spec, digest.hexdigest())
    digest.update(np.packbits(clean).tobytes())  # the givens are part of the data
    split = cut * RECORD_LEN
    return Corpus(train, val, spec, digest.hexdigest(), train_clean=clean[:split], val_clean=clean[split:])
