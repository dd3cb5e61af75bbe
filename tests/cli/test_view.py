"""`ardm view`, `ardm sample --html` and `ardm sudoku solve --trace/--html` (issue 19)."""

from __future__ import annotations

import json

from ardm.cli import main
from ardm.data.sudoku_puzzles import make_puzzles, write_puzzles
from ardm.generation.trace import read_trace


def one_error_line(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ardm: error:") and err.count("\n") == 1, err
    assert all(n in err for n in needles), err
    return err


def test_sample_writes_a_trace_file_and_a_page_that_view_rebuilds(tmp_path, capsys):
    t, page = tmp_path / "t.json", tmp_path / "direct.html"
    assert main(["sample", "--checkpoint", "checkpoints/shakespeare-char", "--sampler", "gate",
                 "--steps", "6", "--length", "24", "--num", "3", "--batch-size", "2", "--no-progress",
                 "--prompt", "To", "--trace", str(t), "--html", str(page)]) == 0
    doc = read_trace(t)
    assert [c["first_sample"] for c in doc["chunks"]] == [0, 2] and doc["prompt"] == "To"
    capsys.readouterr()
    assert main(["view", str(t)]) == 0 and str(tmp_path / "t.html") in capsys.readouterr().out
    assert (tmp_path / "t.html").read_text() == page.read_text()  # --html = --trace, then view
    assert main(["view", str(t), "--sample", "2", "--out", str(tmp_path / "s2.html")]) == 0
    one_error_line(capsys, main(["view", str(t), "--sample", "3"]), "sample 3 is not in the trace")


def test_view_of_a_file_that_is_not_a_trace_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"format": "ardm-compare", "runs": []}))
    one_error_line(capsys, main(["view", str(bad)]), "not a trace file", "'format'")
    bad.write_text(json.dumps({"format": "ardm-trace", "version": 1, "task": "text", "chunks": []}))
    one_error_line(capsys, main(["view", str(bad)]), "lacks field(s) vocab")
    one_error_line(capsys, main(["view", str(tmp_path / "none.json")]), "does not exist")


def test_sudoku_solve_writes_a_sudoku_trace_and_page(tmp_path, capsys):
    write_puzzles(tmp_path / "p.csv", make_puzzles(2, 45, seed=0))
    assert main(["sudoku", "solve", "--checkpoint", "checkpoints/sudoku-puzzles", "--puzzles",
                 str(tmp_path / "p.csv"), "--nfe", "8", "--trace", str(tmp_path / "s.json"),
                 "--html", str(tmp_path / "s.html")]) == 0
    doc = read_trace(tmp_path / "s.json")
    assert doc["task"] == "sudoku" and len(doc["chunks"][0]["initial"]) == 2
    assert len(doc["chunks"][0]["initial"][0]) == 1 + 45  # the prompt and the givens
    assert 'class="sudoku"' in (tmp_path / "s.html").read_text()
    code = main(["sudoku", "solve", "--checkpoint", "checkpoints/sudoku-puzzles", "--puzzles",
                 str(tmp_path / "p.csv"), "--html", str(tmp_path / "no" / "s.html")])
    one_error_line(capsys, code, "--html", "does not exist")
