"""Sudoku grids: a fast pure-Python solver, a checker, a unique-solution generator and puzzle files.

A grid is a sequence of 81 ints in row-major order, 0 for a blank and 1..9 for a digit; cell
c = 9*row + col lies in box 3*(row//3) + col//3.  Grids returned by this module are tuples.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

from ardm.errors import ArdmError

Grid = tuple[int, ...]

_ROWS = [tuple(9 * r + c for c in range(9)) for r in range(9)]
_COLS = [tuple(9 * r + c for r in range(9)) for c in range(9)]
_BOXES = [tuple(9 * (3 * (b // 3) + i // 3) + 3 * (b % 3) + i % 3 for i in range(9)) for b in range(9)]
UNITS: tuple[tuple[int, ...], ...] = tuple(_ROWS + _COLS + _BOXES)
_UNIT_NAMES = [f"{kind} {i + 1}" for kind in ("row", "column", "box") for i in range(9)]  # UNITS order
PEERS: tuple[tuple[int, ...], ...] = tuple(
    tuple(sorted({p for unit in UNITS if c in unit for p in unit} - {c})) for c in range(81)
)

# Candidates of a cell are a 9-bit mask, bit d-1 set when digit d is still possible.
_ALL = 0x1FF
_POPCOUNT = [bin(m).count("1") for m in range(512)]
_DIGIT_OF_BIT = {1 << d: d + 1 for d in range(9)}


def _check_grid(grid: Sequence[int]) -> None:
    if len(grid) != 81:
        raise ArdmError(f"a sudoku grid has 81 cells, got {len(grid)}")
    for c, d in enumerate(grid):
        if not isinstance(d, Integral) or not 0 <= d <= 9:  # Integral: numpy ints are fine too
            raise ArdmError(f"cell {c} holds {d!r}; cells must be 0 (blank) or a digit 1..9")


def _duplicate(grid: Sequence[int]) -> str | None:
    """Describe the first unit holding a repeated nonzero digit, or None if the givens obey the rules."""
    for name, unit in zip(_UNIT_NAMES, UNITS):
        seen: set[int] = set()
        for c in unit:
            d = grid[c]
            if d and d in seen:
                return f"digit {d} appears twice in {name}"
            seen.add(d)
    return None


def _propagate(cands: list[int], queue: list[int]) -> bool:
    """Apply naked and hidden singles in place until nothing changes; False on a contradiction.

    `queue` holds single-candidate cells whose digit is not yet removed from their peers.  Hidden singles
    are not strictly needed, but they cut the search on hard puzzles by orders of magnitude."""
    while True:
        while queue:
            cell = queue.pop()
            bit = cands[cell]
            for p in PEERS[cell]:
                m = cands[p]
                if m & bit:
                    m ^= bit
                    if not m:
                        return False
                    cands[p] = m
                    if not m & (m - 1):
                        queue.append(p)
        for unit in UNITS:
            once = twice = 0
            for c in unit:
                m = cands[c]
                twice |= once & m
                once |= m
            if once != _ALL:  # some digit has no place left in this unit
                return False
            only = once & ~twice
            if only:
                for c in unit:
                    m = cands[c] & only
                    if m & (m - 1):  # one cell is the only home of two digits
                        return False
                    if m and cands[c] != m:
                        cands[c] = m
                        queue.append(c)
        if not queue:
            return True


def _search(cands: list[int], limit: int, out: list[Grid], rng: random.Random | None, guesses: list[int]):
    """DFS on the fewest-candidate cell (MRV): appends up to `limit` solutions; guesses[0] counts guesses."""
    best, best_n = -1, 10
    for c in range(81):
        n = _POPCOUNT[cands[c]]
        if 1 < n < best_n:
            best, best_n = c, n
            if n == 2:
                break
    if best < 0:
        out.append(tuple(_DIGIT_OF_BIT[m] for m in cands))
        return
    mask = cands[best]
    bits = [1 << d for d in range(9) if mask >> d & 1]
    if rng is not None:
        rng.shuffle(bits)
    for bit in bits:
        guesses[0] += 1
        child = cands.copy()
        child[best] = bit
        if _propagate(child, [best]):
            _search(child, limit, out, rng, guesses)
            if len(out) >= limit:
                return


def _run(grid: Sequence[int], limit: int, rng: random.Random | None = None) -> tuple[list[Grid], int]:
    _check_grid(grid)
    if limit < 1:
        raise ArdmError(f"limit must be at least 1, got {limit}")
    if problem := _duplicate(grid):
        raise ArdmError(f"the givens break a sudoku rule: {problem}")
    grid = [int(d) for d in grid]  # plain ints: numpy scalars would slow every mask operation
    out: list[Grid] = []
    guesses = [0]
    cands = [1 << (d - 1) if d else _ALL for d in grid]
    if _propagate(cands, [c for c in range(81) if grid[c]]):
        _search(cands, limit, out, rng, guesses)
    return out, guesses[0]


def solve(grid: Sequence[int], limit: int = 2) -> list[Grid]:
    """All solutions of `grid`, at most `limit` of them; ArdmError if the givens repeat a digit in a unit."""
    return _run(grid, limit)[0]


def count_solutions(grid: Sequence[int], limit: int = 2) -> int:
    """Number of solutions, capped at `limit` (so 0, 1 or `limit` with the default limit=2)."""
    return len(_run(grid, limit)[0])


def search_nodes(grid: Sequence[int]) -> int:
    """Guesses (branching choices) made before the first solution was found: 0 means propagation alone."""
    out, guesses = _run(grid, 1)
    if not out:
        raise ArdmError("the puzzle has no solution")
    return guesses


def conflicts(grid: Sequence[int]) -> set[int]:
    """Cells whose nonzero digit also sits in one of their peers."""
    _check_grid(grid)
    return {c for c in range(81) if grid[c] and any(grid[p] == grid[c] for p in PEERS[c])}


def violations(grid: Sequence[int]) -> int:
    """Unordered pairs of peer cells holding the same nonzero digit (0 for any valid partial or full grid)."""
    _check_grid(grid)
    return sum(1 for c in range(81) if grid[c] for p in PEERS[c] if p > c and grid[p] == grid[c])


def is_solved(grid: Sequence[int], puzzle: Sequence[int] | None = None) -> bool:
    """True if every cell holds a digit, no rule is broken and (if given) every given of `puzzle` is kept."""
    _check_grid(grid)
    if 0 in grid or violations(grid):
        return False
    if puzzle is not None:
        _check_grid(puzzle)
        return all(not g or g == d for g, d in zip(puzzle, grid))
    return True


def random_solution(rng: random.Random) -> Grid:
    """A random complete grid by backtracking with a random digit order: reaches any valid grid."""
    out, _ = _run([0] * 81, 1, rng)
    return out[0]


def pattern_solution(rng: random.Random) -> Grid:
    """A complete grid from the base pattern with shuffled bands, rows, stacks, columns, digits, transpose.

    Cheap, but it only reaches grids equivalent to one base grid; prefer `random_solution` for variety.
    """

    def shuffled_lines() -> list[int]:
        groups = rng.sample(range(3), 3)
        return [3 * g + i for g in groups for i in rng.sample(range(3), 3)]

    rows, cols = shuffled_lines(), shuffled_lines()
    digits = rng.sample(range(1, 10), 9)
    base = [[digits[(r * 3 + r // 3 + c) % 9] for c in cols] for r in rows]
    if rng.random() < 0.5:
        base = [list(col) for col in zip(*base)]
    return tuple(d for row in base for d in row)


def _remove_greedily(puzzle: list[int], solution: Grid, givens: int, cells: Sequence[int]) -> int:
    """Blank `cells` in order while the solution stays unique, down to `givens`; the givens left."""
    left = sum(1 for v in puzzle if v)
    for c in cells:
        if left <= givens:
            break
        if not puzzle[c]:
            continue
        puzzle[c] = 0
        if count_solutions(puzzle, limit=2) == 1:
            left -= 1
        else:
            puzzle[c] = solution[c]
    return left


def minimal_puzzle(solution: Grid, rng: random.Random) -> Grid:
    """The greedy pass alone: blank the cells of `solution` in a random order, skipping any blank that
    would allow a second solution. The result is minimal (no given can go), typically 22-26 givens,
    in about 0.06 s; the training corpus `sudoku-puzzles:N` is built from these (SPEC §8.1)."""
    puzzle = list(solution)
    _remove_greedily(puzzle, solution, 0, rng.sample(range(81), 81))
    return tuple(puzzle)


def make_puzzle(givens: int, seed: int, max_moves: int = 1000) -> tuple[Grid, Grid]:
    """A (puzzle, solution) pair with exactly `givens` givens and a unique solution, deterministic in `seed`.

    Cells of a random solution are blanked in a random order, skipping any blank that would allow a
    second solution. That greedy pass gets stuck at a minimal puzzle of typically 23-26 givens, so
    it is followed by a hill climb: a move puts back two blanked cells of the solution and blanks
    greedily again (in a new random order); a move that ends with no more givens is kept. Measured
    here: 22 givens take about 20 moves (under a second), 21 about 50, 20 a few hundred (about 15 s),
    19 and fewer were not reached in 400 moves. After `max_moves` it gives up with an ArdmError.
    """
    if not 17 <= givens <= 80:
        raise ArdmError(f"givens must be between 17 and 80, got {givens}")
    if max_moves < 0:
        raise ArdmError(f"max_moves must be >= 0, got {max_moves}")
    rng = random.Random(seed)
    solution = random_solution(rng)
    puzzle = list(solution)
    left = _remove_greedily(puzzle, solution, givens, rng.sample(range(81), 81))
    for _ in range(max_moves):
        if left <= givens:
            break
        trial = list(puzzle)
        for c in rng.sample([c for c in range(81) if not trial[c]], 2):
            trial[c] = solution[c]
        kept = [c for c in range(81) if trial[c]]
        trial_left = _remove_greedily(trial, solution, givens, rng.sample(kept, len(kept)))
        if trial_left <= left:
            puzzle, left = trial, trial_left
    if left == givens:
        return tuple(puzzle), solution
    raise ArdmError(
        f"could not reach {givens} givens with a unique solution in {max_moves} moves (seed {seed}, stuck "
        f"at {left}); use more givens (20+) or raise max_moves"
    )


def make_puzzles(num: int, givens: int | tuple[int, int], seed: int) -> list[tuple[Grid, Grid]]:
    """`num` puzzles; puzzle j uses a seed derived from (seed, j), a (lo, hi) range draws its givens."""
    if num < 0:
        raise ArdmError(f"num must be non-negative, got {num}")
    lo, hi = (givens, givens) if isinstance(givens, int) else givens
    if not 17 <= lo <= hi <= 80:
        raise ArdmError(f"givens must be in 17..80 (a range as lo <= hi), got {givens}")
    draw = random.Random(seed)
    counts = [draw.randint(lo, hi) for _ in range(num)]
    return [_make_with_retries(g, seed, j) for j, g in enumerate(counts)]


def _make_with_retries(givens: int, seed: int, j: int, attempts: int = 8) -> tuple[Grid, Grid]:
    """Puzzle j of a set: seeds hashed from (seed, j[, attempt]) rather than seed + j, so neighbouring
    base seeds share no puzzles; a seed whose hill climb stays above `givens` after its moves (see
    make_puzzle) is replaced by the next attempt's, deterministically."""
    error: ArdmError | None = None
    for attempt in range(attempts):
        key = f"{seed}/{j}" if attempt == 0 else f"{seed}/{j}/{attempt}"
        try:
            return make_puzzle(givens, int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        except ArdmError as e:
            error = e
    raise ArdmError(f"puzzle {j}: {error}")


def format_grid(grid: Sequence[int]) -> str:
    """The 81-character form: digits, '.' for blanks."""
    _check_grid(grid)
    return "".join(str(d) if d else "." for d in grid)


def pretty(grid: Sequence[int]) -> str:
    """The 9 rows with '|' between boxes and a '-' line between bands (11 lines), for a terminal."""
    text = format_grid(grid)
    rows = [" | ".join(" ".join(text[r + i : r + i + 3]) for i in (0, 3, 6)) for r in range(0, 81, 9)]
    sep = "------+-------+------"
    return "\n".join(rows[:3] + [sep] + rows[3:6] + [sep] + rows[6:])


def parse_grid(text: str) -> Grid:
    """Parse 81 characters ('1'..'9', '0' or '.' for blank; surrounding whitespace ignored)."""
    text = text.strip()
    for i, ch in enumerate(text):
        if ch not in ".0123456789":
            raise ArdmError(f"invalid character {ch!r} at position {i + 1} (expected 1-9, 0 or '.')")
    if len(text) != 81:
        raise ArdmError(f"expected 81 cells, found {len(text)}")
    return tuple(0 if ch == "." else int(ch) for ch in text)


@dataclass(frozen=True)
class Entry:
    line: int
    puzzle: Grid
    solution: Grid | None


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


def _is_header(line: str) -> bool:
    # e.g. "quizzes,solutions" (Kaggle) or "puzzle,solution": only words, so it cannot be a grid
    return all(f.strip().replace("_", "").isalpha() for f in line.split(","))


def _parse_field(text: str, what: str) -> Grid:
    try:
        return parse_grid(text)
    except ArdmError as e:
        raise ArdmError(f"{what}: {e}") from None


def _read_line(number: int, line: str) -> Entry:
    fields = line.split(",")
    if len(fields) > 2:
        raise ArdmError(f"expected 'puzzle' or 'puzzle,solution', found {len(fields)} fields")
    puzzle = _parse_field(fields[0], "puzzle")
    if problem := _duplicate(puzzle):
        raise ArdmError(f"the givens break a sudoku rule: {problem}")
    solution = None
    if len(fields) == 2:
        solution = _parse_field(fields[1], "solution")
        if not is_solved(solution):
            raise ArdmError("the solution is not a valid solved grid")
        if not is_solved(solution, puzzle):
            raise ArdmError("the solution contradicts the givens of the puzzle")
    elif not solve(puzzle, limit=1):  # a valid given solution already proves the puzzle solvable
        raise ArdmError("the puzzle has no solution")
    return Entry(number, puzzle, solution)


def read_puzzles(path: str | Path) -> tuple[list[Entry], list[LineError]]:
    """Read a puzzle file: lines `puzzle` or `puzzle,solution` (the Kaggle CSV layout, header allowed).

    Blank lines and '#' comments are skipped.  A bad line becomes a LineError (1-based line number) and
    reading goes on.  Puzzles with several solutions are accepted; only the generator insists on uniqueness.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM from spreadsheet exports
    except FileNotFoundError:
        raise ArdmError(f"puzzle file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ArdmError(f"cannot read puzzle file {path}: {e}") from None
    entries: list[Entry] = []
    errors: list[LineError] = []
    first = True
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        maybe_header, first = first, False
        if maybe_header and _is_header(line):
            continue
        try:
            entries.append(_read_line(number, line))
        except ArdmError as e:
            errors.append(LineError(number, str(e)))
    return entries, errors


def write_puzzles(path: str | Path, pairs: Iterable[tuple[Sequence[int], Sequence[int]]]) -> int:
    """Write `puzzle,solution` CSV lines under a `puzzle,solution` header; returns the number written."""
    lines = ["puzzle,solution"] + [f"{format_grid(p)},{format_grid(s)}" for p, s in pairs]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1
