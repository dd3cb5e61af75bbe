"""ardm.tasks.seq2seq.bench: `ardm seq2seq eval` decodes a tiny trained model end to end and scores
it with sacrebleu (results.json, summary.md, the plot), beside the AR twin."""

from __future__ import annotations

import json

import pytest

from ardm.cli import main

pytest.importorskip("sacrebleu")


def test_seq2seq_eval_end_to_end_with_sacrebleu(seq2seq_models, tmp_path, capsys):
    _, den, ar = seq2seq_models
    out = tmp_path / "eval"
    assert main(["seq2seq", "eval", "--checkpoint", str(den), "--ar", str(ar), "--samplers", "fixed,gate",
                 "--nfe", "2,4", "--mbr", "1,3", "--num", "6", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["items"] == 6 and len(res["data"]["sha256"]) == 64 and res["git_commit"]
    labels = [(r["label"], r["nfe_budget"], r["mbr"]) for r in res["runs"]]
    assert labels[:2] == [("ar-greedy", 10, 1), ("ar-beam4", 10, 1)]
    assert {(s, k, m) for s in ("fixed", "gate") for k in (2, 4) for m in (1, 3)} <= set(labels)
    for r in res["runs"]:
        assert 0.0 <= r["bleu"] <= 100.0 and 0.0 <= r["chrf"] <= 100.0
        assert r["bleu_signature"].startswith("nrefs:1|") and len(r["hypotheses"]) == 6
        if r["sampler"] == "fixed":
            assert r["nfe_per_source"] <= r["mbr"] * (r["nfe_budget"] + 1)
    assert "| fixed | 4 | 3 |" in (out / "summary.md").read_text()
    assert (out / "bleu_vs_nfe.png").stat().st_size > 1000
    captured = capsys.readouterr()
    assert "AR twin greedy" in captured.out
    assert "fixed NFE 4" in captured.err and "ar-beam4" in captured.err  # a progress bar per decode


def test_seq2seq_eval_no_progress_writes_nothing_to_stderr(seq2seq_models, tmp_path, capsys):
    _, den, _ = seq2seq_models
    assert main(["seq2seq", "eval", "--checkpoint", str(den), "--samplers", "fixed", "--nfe", "2",
                 "--mbr", "1", "--num", "2", "--no-progress", "--out", str(tmp_path / "e")]) == 0
    assert capsys.readouterr().err == ""


def test_seq2seq_eval_refuses_mbr_zero(seq2seq_models, tmp_path, capsys):
    _, den, _ = seq2seq_models
    args = ["seq2seq", "eval", "--checkpoint", str(den), "--mbr", "0", "--out", str(tmp_path / "e")]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == "ardm: error: --mbr must be >= 1 (the number of candidates " \
        "per source), got 0"


def test_seq2seq_eval_keeps_finished_budgets_when_a_later_one_fails(seq2seq_models, tmp_path, monkeypatch):
    import ardm.tasks.seq2seq.bench as bench

    _, den, _ = seq2seq_models
    real = bench.decode

    def decode(loaded, sources, sampler, steps, **kw):
        if steps == 4:
            raise KeyboardInterrupt  # the run stopped during its second budget
        return real(loaded, sources, sampler, steps, **kw)

    monkeypatch.setattr(bench, "decode", decode)
    cfg = bench.EvalConfig(checkpoint=str(den), samplers=["fixed"], nfe=[2, 4], mbr=[1, 2], num=3,
                           progress=False)
    with pytest.raises(KeyboardInterrupt):
        bench.run_eval(cfg, tmp_path / "e")
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert [(r["nfe_budget"], r["mbr"]) for r in res["runs"]] == [(2, 1), (2, 2)]
