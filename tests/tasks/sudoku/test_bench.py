"""ardm.tasks.sudoku.bench: puzzle sets reused from --puzzles-dir, and hard puzzles reported by their
number of givens."""

from __future__ import annotations

import pytest

from ardm.data.sudoku_puzzles import make_puzzles, parse_grid, read_puzzles, solve, write_puzzles
from ardm.errors import ArdmError
from ardm.tasks.sudoku.bench import BenchConfig, givens_strata, logic_strata, puzzle_set
from ardm.tasks.sudoku.report import logic_table, strata_table


def test_a_puzzles_dir_is_filled_once_and_then_reused(tmp_path):
    shared, cfg = tmp_path / "sets", BenchConfig(checkpoint="x", num=2, puzzles_dir=str(tmp_path / "sets"))
    first = puzzle_set("easy", cfg, tmp_path)
    assert (shared / "puzzles-easy.csv").exists() and (tmp_path / "puzzles-easy.csv").exists()
    planted = make_puzzles(3, 40, seed=99)  # another set in the folder: read it, do not regenerate
    write_puzzles(shared / "puzzles-easy.csv", planted)
    (tmp_path / "run2").mkdir()
    again = puzzle_set("easy", cfg, tmp_path / "run2")
    assert [list(p) for p, _ in again] == [list(p) for p, _ in planted[:2]] != [list(p) for p, _ in first]
    entries, _ = read_puzzles(tmp_path / "run2" / "puzzles-easy.csv")  # copied beside the results
    assert [list(e.puzzle) for e in entries] == [list(p) for p, _ in planted[:2]]


def test_a_puzzles_dir_with_too_few_puzzles_is_regenerated_and_a_bad_file_refused(tmp_path):
    cfg = BenchConfig(checkpoint="x", num=3, puzzles_dir=str(tmp_path))
    write_puzzles(tmp_path / "puzzles-easy.csv", make_puzzles(1, 40, seed=1))
    (tmp_path / "o").mkdir()
    assert len(puzzle_set("easy", cfg, tmp_path / "o")) == 3
    (tmp_path / "puzzles-easy.csv").write_text("puzzle,solution\n123,456\n")
    with pytest.raises(ArdmError, match="not a puzzle set"):
        puzzle_set("easy", cfg, tmp_path / "o")


def test_hard_results_are_stratified_by_givens():
    def grid(givens: int) -> list[int]:
        return [1] * givens + [0] * (81 - givens)

    pairs = [(grid(g), grid(81)) for g in (20, 21, 22, 25, 25)]
    records = [{"solved": s, "violations": 0, "nfe": 81} for s in (False, True, True, True, False)]
    bands = givens_strata(records, pairs)
    assert [(b["givens"], b["solved"], b["puzzles"]) for b in bands] == [
        ([20, 21], 1, 2), ([22, 23], 1, 1), ([24, 25], 1, 2)]
    table = strata_table({"runs": [{"set": "hard", "nfe_budget": 81, "label": "gate", "by_givens": bands}]})
    assert table[0].startswith("| set | NFE budget | sampler | 20-21 givens")
    assert table[-1] == "| hard | 81 | gate | 50% (1/2) | 100% (1/1) | 50% (1/2) |"


def test_results_are_split_by_whether_singles_suffice():
    inkala = parse_grid("8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..")
    pairs = [*make_puzzles(2, 40, seed=0), (inkala, solve(inkala)[0])]  # easy ones need no guess
    records = [{"solved": s, "violations": 0, "nfe": 81} for s in (True, False, True)]
    strata = logic_strata(records, pairs)
    assert [(b["logic"], b["solved"], b["puzzles"]) for b in strata] == [("singles", 1, 2), ("search", 1, 1)]
    table = logic_table({"runs": [{"set": "hard", "nfe_budget": 81, "label": "llada", "by_logic": strata}]})
    assert table[-1] == "| hard | 81 | llada | 50% (1/2) | 100% (1/1) |"
