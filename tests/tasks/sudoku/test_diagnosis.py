"""`ardm sudoku diagnose`: where llada's first wrong digit lies among its commits (issue 15)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ardm.cli import main
from ardm.data.sudoku_puzzles import make_puzzles, write_puzzles
from ardm.tasks.sudoku.diagnosis import TAUS, diagnose, first_error
from tests.tasks.sudoku.test_solving import TOK, oracle

BUNDLED = Path(__file__).resolve().parents[3] / "checkpoints" / "sudoku-puzzles"


def test_the_first_wrong_commit_is_read_in_commit_order_not_cell_order():
    # cells listed out of order: commit order is 0.99, 0.97, 0.85 (first wrong), 0.6 (wrong)
    # re-read: the last wrong digit is the least likely (0.05), the first wrong one is doubted at 0.4
    e = first_error(conf=[0.6, 0.99, 0.85, 0.97], order=[4, 1, 3, 2], wrong=[True, False, True, False],
                    reread=[0.05, 0.95, 0.4, 0.99])
    assert e is not None
    assert e.at == 0.75 and e.confidence == 0.85
    assert not e.least_confident and e.least_confident_so_far
    assert e.earliest_below == {0.8: False, 0.9: True, 0.95: True, 0.99: False}
    assert e.reread_least_is_wrong and not e.reread_least_is_first and not e.reread_doubts_none
    assert e.reread_earliest_below == {0.1: False, 0.5: True, 0.9: True}
    assert first_error([0.5, 0.9], [1, 2], [False, False], [0.9, 0.9]) is None


def test_an_oracle_that_believes_a_wrong_grid_is_caught_at_its_first_wrong_commit():
    pairs = make_puzzles(3, 40, seed=5)
    believed = []
    for puzzle, solution in pairs:  # swap two blank cells of the first row holding different digits
        a, b = [c for c in range(9) if not puzzle[c]][:2]
        s = list(solution)
        s[a], s[b] = s[b], s[a]
        believed.append(s)
    d = diagnose(oracle(believed), TOK, pairs, 81)
    assert d["solved"] == 0 and d["wrong_grids"] == 3
    sure = math.exp(8.0) / (math.exp(8.0) + 9)  # the oracle's q of its digit among 10 tokens
    assert d["first_error_confidence_median"] == pytest.approx(sure)
    assert 0 < d["first_error_at_median"] <= 1
    assert set(d["first_error_is_earliest_below"]) == {str(t) for t in TAUS}
    # the oracle is as sure of every digit on re-reading: nothing is doubted
    assert d["reread_doubts_nothing_below_0.8"] == 3
    right = diagnose(oracle([s for _, s in pairs]), TOK, pairs, 81)
    assert right["solved"] == 3 and right["wrong_grids"] == 0 and right["first_error_at_median"] is None


def test_cli_diagnose_prints_json_on_the_bundled_model_and_refuses_an_empty_file(tmp_path, capsys):
    f = tmp_path / "p.csv"
    write_puzzles(f, make_puzzles(2, 24, seed=7))
    assert main(["sudoku", "diagnose", "--checkpoint", str(BUNDLED), "--puzzles", str(f), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["puzzles"] == 2 and 0 <= res["solved"] <= 2 and res["wrong_grids"] <= 2 - res["solved"]
    empty = tmp_path / "empty.csv"
    empty.write_text("puzzle,solution\n")
    assert main(["sudoku", "diagnose", "--checkpoint", str(BUNDLED), "--puzzles", str(empty)]) == 2
    assert "no valid puzzle" in capsys.readouterr().err
