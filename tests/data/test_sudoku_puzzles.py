"""Sudoku module: solver on known hard puzzles, checker, unique-solution generator, puzzle files."""

from __future__ import annotations

import random

import pytest

from ardm.errors import ArdmError
from ardm.tasks.sudoku import (
    PEERS,
    UNITS,
    Entry,
    conflicts,
    count_solutions,
    format_grid,
    is_solved,
    make_puzzle,
    make_puzzles,
    parse_grid,
    pattern_solution,
    pretty,
    random_solution,
    read_puzzles,
    search_nodes,
    solve,
    violations,
    write_puzzles,
)

INKALA = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
HARD = {
    "inkala": INKALA,
    "easter_monster": "1.......2.9.4...5...6...7...5.9.3.......7.......85..4.7.....6...3...9.8...2.....1",
    "golden_nugget": ".......39.....1..5..3.5.8....8.9...6.7...2...1..4.......9.8..5..2....6..4..7.....",
    "platinum_blonde": ".......12........3..23..4....18....5.6..7.8.......9.....85.....9...4.5..47...6...",
    # 17-clue puzzles (Royle's list / Norvig's top95 / the anti-backtracking one from Wikipedia).
    "royle_17": ".......1.4.........2...........5.4.7..8...3....1.9....3..4..2...5.1........8.6...",
    "top95_17": "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......",
    "anti_backtrack_17": "..............3.85..1.2.......5.7.....4...1...9.......5......73..2.1........4...9",
}
# Often quoted as a 17-clue puzzle, but its givens repeat the digit 2 in column 6.
BROKEN_17 = "...........1..2.3....4.5...1..6.7......8...9...3......5....2..4.....1.6.8.......7"


def givens_of(grid) -> int:
    return sum(1 for d in grid if d)


def test_units_and_peers():
    assert len(UNITS) == 27 and all(len(u) == 9 and len(set(u)) == 9 for u in UNITS)
    assert all(len(p) == 20 and c not in p for c, p in enumerate(PEERS))
    # cell (4, 4) sees its row, its column and the rest of the centre box
    assert set(PEERS[40]) == (
        {36, 37, 38, 39, 41, 42, 43, 44} | {4, 13, 22, 31, 49, 58, 67, 76} | {30, 32, 48, 50}
    )


@pytest.mark.parametrize("givens", [40, 30, 24])
def test_generated_puzzles_are_unique_and_match_their_solution(givens):
    for seed in (0, 1, 2):
        puzzle, solution = make_puzzle(givens, seed)
        assert givens_of(puzzle) == givens
        assert is_solved(solution, puzzle)  # givens are a subset of the solution
        assert all(p in (0, s) for p, s in zip(puzzle, solution))
        assert solve(puzzle) == [solution]


def test_generator_is_deterministic_by_seed():
    assert make_puzzle(30, seed=7) == make_puzzle(30, seed=7)
    assert make_puzzle(30, seed=7) != make_puzzle(30, seed=8)


def test_generator_rejects_bad_givens_and_gives_up_clearly():
    for bad in (16, 81):
        with pytest.raises(ArdmError, match="between 17 and 80"):
            make_puzzle(bad, seed=0)
    with pytest.raises(ArdmError, match="could not reach 17 givens"):
        make_puzzle(17, seed=0, max_moves=1)


def test_hill_climb_reaches_hard_counts_below_the_greedy_minimum():
    for seed in (0, 1):
        puzzle, solution = make_puzzle(22, seed)
        assert givens_of(puzzle) == 22 and solve(puzzle) == [solution]


def test_make_puzzles_seeds_and_givens_range():
    batch = make_puzzles(4, (24, 30), seed=3)
    assert batch == make_puzzles(4, (24, 30), seed=3)
    assert len({p for p, _ in batch}) == 4
    assert all(24 <= givens_of(p) <= 30 and count_solutions(p) == 1 for p, _ in batch)
    assert [givens_of(p) for p, _ in make_puzzles(2, 35, seed=3)] == [35, 35]
    with pytest.raises(ArdmError, match="givens must be in 17..80"):
        make_puzzles(1, (30, 24), seed=0)


def test_checker_rejects_every_single_cell_corruption():
    solution = random_solution(random.Random(5))
    assert is_solved(solution) and violations(solution) == 0 and not conflicts(solution)
    for c in range(81):
        for d in range(1, 10):
            if d == solution[c]:
                continue
            bad = list(solution)
            bad[c] = d
            assert not is_solved(bad)
            assert violations(bad) > 0 and c in conflicts(bad)


def test_checker_requires_full_grid_and_kept_givens():
    puzzle, solution = make_puzzle(30, seed=4)
    assert not is_solved(puzzle)
    assert is_solved(solution, puzzle)
    other = pattern_solution(random.Random(1))
    assert is_solved(other) and not is_solved(other, puzzle)


@pytest.mark.parametrize("name", sorted(HARD))
def test_solver_solves_known_hard_puzzles(name):
    puzzle = parse_grid(HARD[name])
    solutions = solve(puzzle)
    assert len(solutions) == 1 and is_solved(solutions[0], puzzle)
    assert count_solutions(puzzle) == 1


def test_solver_counts_multiple_and_zero_solutions():
    empty = (0,) * 81
    assert count_solutions(empty, limit=5) == 5
    assert all(is_solved(s) for s in solve(empty, limit=3))
    # Row 1 holds 1..8, so its last cell needs a 9, which column 9 already has: no rule broken, no solution.
    dead = parse_grid("12345678." + "........9" + "." * 63)
    assert violations(dead) == 0 and count_solutions(dead) == 0
    with pytest.raises(ArdmError, match="no solution"):
        search_nodes(dead)


def test_search_nodes_measures_guessing():
    _, solution = make_puzzle(40, seed=0)
    one_blank = (0,) + solution[1:]
    assert search_nodes(one_blank) == 0
    assert search_nodes(parse_grid(INKALA)) > 0


def test_broken_givens_raise_before_search():
    assert conflicts(parse_grid(BROKEN_17))
    with pytest.raises(ArdmError, match="digit 2 appears twice in column 6"):
        solve(parse_grid(BROKEN_17))
    with pytest.raises(ArdmError, match="81 cells"):
        solve((0,) * 80)


def test_conflicts_and_violations_on_a_hand_made_grid():
    grid = [0] * 81
    grid[0] = grid[8] = 5  # same row
    grid[72] = 5  # same column as cell 0
    grid[10] = 3  # box 1, no clash
    grid[40] = 3  # centre, not a peer of cell 10
    assert conflicts(grid) == {0, 8, 72}
    assert violations(grid) == 2  # pairs (0, 8) and (0, 72); 8 and 72 are not peers
    grid[20] = 5  # in box 1 with cell 0, a peer of no other 5
    assert violations(grid) == 3 and conflicts(grid) == {0, 8, 20, 72}


def test_random_and_pattern_solutions_are_valid():
    grids = [random_solution(random.Random(s)) for s in range(5)]
    assert all(is_solved(g) for g in grids)
    assert len(set(grids)) == 5
    assert random_solution(random.Random(1)) == grids[1]
    patterns = [pattern_solution(random.Random(s)) for s in range(5)]
    assert all(is_solved(g) for g in patterns) and len(set(patterns)) == 5


def test_parse_and_format():
    text = INKALA.replace(".", "0")
    assert parse_grid(text) == parse_grid(INKALA)
    assert format_grid(parse_grid(text)) == INKALA
    assert len(pretty(parse_grid(INKALA)).splitlines()) == 11
    with pytest.raises(ArdmError, match="expected 81 cells, found 80"):
        parse_grid(INKALA[:80])
    with pytest.raises(ArdmError, match="invalid character 'x'"):
        parse_grid("x" + INKALA[1:])


def test_read_puzzles_reports_each_bad_line(tmp_path):
    puzzle = parse_grid(INKALA)
    solution = solve(puzzle)[0]
    good_csv = f"{INKALA},{format_grid(solution)}"
    swapped = list(solution)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    other = pattern_solution(random.Random(0))
    lines = [
        "quizzes,solutions",  # 1 header
        INKALA.replace(".", "0"),  # 2 good, no solution
        good_csv,  # 3 good with solution
        "",  # 4 blank
        INKALA[:80],  # 5 too short
        "# a comment",  # 6
        INKALA[:40] + "x" + INKALA[41:],  # 7 bad character
        "77" + "." * 79,  # 8 givens repeat 7 in row 1
        "12345678." + "........9" + "." * 63,  # 9 unsolvable
        f"{INKALA},{format_grid(swapped)}",  # 10 solution breaks rules
        f"{INKALA},{format_grid(other)}",  # 11 valid grid, wrong for this puzzle
    ]
    path = tmp_path / "puzzles.csv"
    path.write_text("\n".join(lines) + "\n")
    entries, errors = read_puzzles(path)
    assert entries == [Entry(2, puzzle, None), Entry(3, puzzle, solution)]
    messages = {e.line: e.message for e in errors}
    assert sorted(messages) == [5, 7, 8, 9, 10, 11]
    assert "found 80" in messages[5]
    assert "invalid character 'x'" in messages[7]
    assert "digit 7 appears twice in row 1" in messages[8]
    assert "no solution" in messages[9]
    assert "not a valid" in messages[10]
    assert "contradicts the givens" in messages[11]


def test_write_then_read_round_trip_and_missing_file(tmp_path):
    pairs = make_puzzles(3, 30, seed=11)
    path = tmp_path / "out.csv"
    assert write_puzzles(path, pairs) == 3
    assert path.read_text().splitlines()[0] == "puzzle,solution"
    entries, errors = read_puzzles(path)
    assert errors == [] and [(e.puzzle, e.solution) for e in entries] == pairs
    assert [e.line for e in entries] == [2, 3, 4]
    with pytest.raises(ArdmError, match="not found"):
        read_puzzles(tmp_path / "missing.csv")
