"""ardm.tasks.seq2seq.grid: `ardm seq2seq table` merges several eval results files of one denoiser on
one split into the sampler x NFE grid, refuses files of other data or another denoiser, and takes
only the AR rows of --ar-results files."""

from __future__ import annotations

import json

from ardm.cli import main
from ardm.tasks.seq2seq.grid import grid_lines, merge_results


def _run(label, nfe, k, bleu, temperature=0.0, sampler=None):
    return {"label": label, "sampler": sampler or label, "temperature": temperature, "nfe_budget": nfe,
            "mbr": k, "nfe_per_source": float(nfe * k), "bleu": bleu, "bleu_ci": 1.0, "chrf": bleu + 20,
            "hypotheses": ["x"]}


def _write(path, runs, sha="a" * 64, ckpt="runs/den/ckpt-1", step=1):
    res = {"data": {"path": "data/multi30k", "split": "test", "items": 3, "references": 3, "sha256": sha},
           "checkpoint": {"path": ckpt, "step": step}, "metrics": ["bleu", "chrf"], "runs": runs}
    path.write_text(json.dumps(res))
    return path


def test_merge_builds_the_grid_with_ar_rows_and_goals(tmp_path):
    a = _write(tmp_path / "a.json", [_run("fixed", 5, 1, 10.0), _run("fixed", 5, 10, 12.0),
                                     _run("fixed", 20, 1, 14.0), _run("fixed", 20, 10, 16.5)])
    b = _write(tmp_path / "b.json", [_run("edit", 5, 1, 13.0), _run("fixed", 5, 1, 99.0)])
    ar_runs = [_run("ar-greedy", 36, 1, 16.0, sampler="ar"), _run("fixed", 2, 1, 1.0)]
    ar = _write(tmp_path / "ar.json", ar_runs, ckpt="runs/other/ckpt-9", step=9)
    merged = merge_results([a, b], [ar])
    assert merged["duplicates"] == 1  # the second fixed NFE 5 k = 1 is ignored, the first kept
    lines = grid_lines(merged)
    assert "| `fixed` | 0 | 10.00 ± 1.00 / 12.00 [5.0] | 14.00 ± 1.00 / 16.50 [20.0] |" in lines
    assert "| `edit` | 0 | 13.00 ± 1.00 / - [5.0] | - |" in lines
    assert "- AR twin ar-greedy: BLEU 16.00 ± 1.00 at 36.0 passes per source" in lines
    assert not any("NFE 2 " in line for line in lines)  # the AR file's diffusion rows are not taken
    assert any("16.50 (meets the goal >= greedy)" in line for line in lines)
    assert "| `fixed` | 0 | 30.00 / 32.00 [5.0] | 34.00 / 36.50 [20.0] |" in grid_lines(merged, "chrf")


def test_table_cli_refuses_other_data_and_other_denoisers(tmp_path, capsys):
    a = _write(tmp_path / "a.json", [_run("fixed", 5, 1, 10.0)])
    other_data = _write(tmp_path / "b.json", [_run("edit", 5, 1, 10.0)], sha="b" * 64)
    other_model = _write(tmp_path / "c.json", [_run("edit", 5, 1, 10.0)], ckpt="runs/x/ckpt-2", step=2)
    assert main(["seq2seq", "table", str(a), str(other_data)]) == 2
    assert "data sha256" in capsys.readouterr().err
    assert main(["seq2seq", "table", str(a), str(other_model)]) == 2
    assert "one table per denoiser" in capsys.readouterr().err
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe")
    assert main(["seq2seq", "table", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a results.json" in err


def test_table_cli_prints_the_grid_and_writes_the_plot(tmp_path, capsys):
    a = _write(tmp_path / "a.json", [_run("fixed", 5, 1, 10.0), _run("fixed", 5, 1, 11.0, temperature=0.5),
                                     _run("fixed", 20, 1, 12.0)])
    assert main(["seq2seq", "table", str(a), "--plot", str(tmp_path / "p.png"), "--metric", "chrf"]) == 0
    out = capsys.readouterr().out
    assert "| `fixed` | 0.5 | 31.00 [5.0] | - |" in out and "Cells: chrF at MBR k = 1" in out
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_multi_reference_grids_have_no_multi30k_goals(tmp_path):
    runs = [_run("fixed", 20, 10, 5.0), _run("ar-greedy", 32, 1, 3.0, sampler="ar")]
    for r in runs:
        r["rouge_l"] = r["coverage"] = 20.0
    path = _write(tmp_path / "cg.json", runs)
    res = json.loads(path.read_text())
    res["metrics"] = ["bleu", "chrf", "rouge_l", "coverage"]
    path.write_text(json.dumps(res))
    lines = grid_lines(merge_results([path]))
    assert not any("goal" in line for line in lines)
    assert "| `fixed` | 0 | 20.00 [200.0] |" in grid_lines(merge_results([path]), "coverage")
