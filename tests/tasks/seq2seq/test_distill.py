"""ardm.tasks.seq2seq.distill: the teacher's beam outputs replace the training targets, one pair per
distinct source; the other splits are copied unchanged; a denoiser is refused as a teacher."""

from __future__ import annotations

import json

import pytest

from ardm.cli import main
from ardm.core.checkpoint import load
from ardm.data.parallel import EOS, aligned_pairs, source_prompts, special_ids
from ardm.errors import ArdmError
from ardm.tasks.seq2seq.beam import beam_search
from ardm.tasks.seq2seq.decoding import layout, texts_of
from ardm.tasks.seq2seq.distill import distill_corpus


def test_distilled_targets_are_the_teachers_and_other_splits_are_copied(seq2seq_models, tmp_path):
    data, _, ar = seq2seq_models
    out = tmp_path / "kd"
    manifest = distill_corpus(ar, out, beam=2, batch_size=7, progress=False)
    pairs = aligned_pairs(out / "train.src", out / "train.tgt")
    originals = aligned_pairs(data / "train.src", data / "train.tgt")
    distinct = list(dict.fromkeys(s for s, _ in originals))
    assert [s for s, _ in pairs] == distinct  # one pair per distinct source, in corpus order
    assert manifest["distinct_sources"] == len(distinct) and manifest["train_pairs_in"] == len(originals)
    for name in ("val.src", "val.tgt", "test.src", "test.tgt"):
        assert (out / name).read_bytes() == (data / name).read_bytes()
    assert json.loads((out / "distill.json").read_text())["beam"] == 2
    # the targets are the teacher's own outputs, whatever the batching
    loaded = load(ar)
    src_len, tgt_len = layout(loaded)
    prompts = source_prompts(loaded.tokenizer, distinct[:5], src_len)
    tokens, _ = beam_search(loaded.model, prompts, tgt_len, special_ids(loaded.tokenizer)[EOS], 2)
    want = texts_of(loaded, tokens, prompts.shape[1])
    got = [t for _, t in pairs[:5]]
    assert got == [w if w.strip() else dict(originals)[s] for w, s in zip(want, distinct[:5])]


def test_a_denoiser_is_not_a_teacher(seq2seq_models, tmp_path):
    _, denoiser, _ = seq2seq_models
    with pytest.raises(ArdmError, match="not an AR twin"):
        distill_corpus(denoiser, tmp_path / "kd", progress=False)
    assert not (tmp_path / "kd").exists()


def test_the_command_writes_the_folder_and_refuses_a_denoiser_in_one_line(seq2seq_models, tmp_path, capsys):
    data, denoiser, ar = seq2seq_models
    assert main(["seq2seq", "distill", "--teacher", str(ar), "--out", str(tmp_path / "kd"), "--num", "5",
                 "--no-progress"]) == 0
    assert len(aligned_pairs(tmp_path / "kd" / "train.src", tmp_path / "kd" / "train.tgt")) == 5
    capsys.readouterr()
    rc = main(["seq2seq", "distill", "--teacher", str(denoiser), "--out", str(tmp_path / "kd2")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ardm: error:") and len(err.strip().splitlines()) == 1


def test_a_negative_thread_count_is_one_line_and_writes_nothing(seq2seq_models, tmp_path, capsys):
    _, _, ar = seq2seq_models
    rc = main(["seq2seq", "distill", "--teacher", str(ar), "--out", str(tmp_path / "kd"), "--threads", "-2"])
    err = capsys.readouterr().err
    assert rc == 2 and "--threads must be >= 0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "kd").exists()
