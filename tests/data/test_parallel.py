"""ardm.data.parallel: aligned files and .jsonl pairs, the sets' own splits, grouped references,
the shared BPE, the record layout (source clean in front) and every bad input's one message."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from ardm.core.config import DataConfig
from ardm.data.parallel import (
    EOS,
    PAD,
    SEP,
    Truncation,
    encode_checked,
    group_references,
    load_parallel,
    pair_records,
    read_split,
    source_prompts,
    special_ids,
    train_pair_tokenizer,
)
from ardm.data.sources import load_corpus
from ardm.data.tokens import train_tokenizer
from ardm.errors import ArdmError

SRC = ["a cat sleeps", "a dog runs", "the bird eats fish"]
TGT = ["eine katze schlaeft", "ein hund rennt", "der vogel isst fisch"]


def _folder(tmp_path, train=(SRC, TGT), val=(SRC[:2], TGT[:2]), test=(SRC[:1] * 2, TGT[:2])):
    for split, (s, t) in (("train", train), ("val", val), ("test_2016", test)):
        (tmp_path / f"{split}.en.gz").write_bytes(gzip.compress(("\n".join(s) + "\n").encode()))
        (tmp_path / f"{split}.de.gz").write_bytes(gzip.compress(("\n".join(t) + "\n").encode()))
    return tmp_path


def _cfg(path, **kw) -> DataConfig:
    kw = {"source_len": 6, "target_len": 8, "record_len": 15, "seq_len": 15, "tokenizer": "bpe",
          "bpe_vocab_size": 80, "pair": "en.gz,de.gz", **kw}
    return DataConfig(path=str(path), **kw)


def test_folder_splits_are_the_sets_own_and_tests_group_their_references(tmp_path):
    cfg = _cfg(_folder(tmp_path))
    assert read_split(cfg, "train") == list(zip(SRC, TGT))
    assert read_split(cfg, "dev") == read_split(cfg, "val") == list(zip(SRC[:2], TGT[:2]))
    items = group_references(read_split(cfg, "test"))  # test matches test_2016
    assert len(items) == 1 and items[0].references == TGT[:2] and items[0].line == 1
    corpus = load_corpus(cfg)
    assert corpus.train_pairs == list(zip(SRC, TGT)) and len(corpus.sha256) == 64


def test_jsonl_pairs_split_by_their_last_fraction(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text("".join(json.dumps({"en": f"s {i}", "de": f"t {i}"}) + "\n" for i in range(10)))
    cfg = _cfg(p, pair="en,de", val_fraction=0.2)
    assert [s for s, _ in read_split(cfg, "train")] == [f"s {i}" for i in range(8)]
    assert read_split(cfg, "val") == [("s 8", "t 8"), ("s 9", "t 9")]
    with pytest.raises(ArdmError, match="not 'test'"):
        read_split(cfg, "test")


@pytest.mark.parametrize("src, tgt, message", [
    (SRC, TGT[:2], r"train.en.gz has 3 lines and .*train.de.gz 2: they diverge at line 3"),
    (SRC[:1], TGT, r"diverge at line 2 \(.*train.de.gz has it"),
    ([SRC[0], " ", SRC[2]], TGT, r"train.en.gz:2: empty line"),
])
def test_misaligned_files_and_empty_lines_get_one_message(tmp_path, src, tgt, message):
    cfg = _cfg(_folder(tmp_path, train=(src, tgt)))
    with pytest.raises(ArdmError, match=message):
        read_split(cfg, "train")


def test_bad_pair_and_missing_split_are_refused(tmp_path):
    with pytest.raises(ArdmError, match="data.pair must be 'SRC,TGT'"):
        read_split(_cfg(_folder(tmp_path), pair="en.gz"), "train")
    with pytest.raises(ArdmError, match="no unique split 'nope'"):
        read_split(_cfg(tmp_path), "nope")
    with pytest.raises(ArdmError, match="record_len = source_len"):
        _cfg(tmp_path, record_len=14)


def test_records_put_a_left_padded_source_and_sep_before_an_eos_filled_target(tmp_path):
    cfg = _cfg(_folder(tmp_path))
    tok = train_tokenizer(cfg, load_parallel(cfg))
    sp = special_ids(tok)
    ids, clean = pair_records(tok, [("a cat", "eine katze")], cfg)
    assert ids.shape == clean.shape == (15,)
    assert clean[:7].all() and not clean[7:].any()
    assert ids[6] == sp[SEP] and ids[0] == sp[PAD] and ids[-1] == sp[EOS]
    assert tok.decode(ids[:6].tolist()).strip() == "a cat"
    target = ids[7:].tolist()
    assert tok.decode(target[: target.index(sp[EOS])]).strip() == "eine katze"


def test_truncation_is_counted_never_silent(tmp_path):
    cfg = _cfg(_folder(tmp_path), source_len=2, target_len=3, record_len=6, seq_len=6)
    tok = train_tokenizer(cfg, load_parallel(cfg))
    cut = Truncation()
    ids, _ = pair_records(tok, list(zip(SRC, TGT)), cfg, cut)
    assert cut.sources == 3 and cut.targets == 3 and cut.lines == [0, 1, 2]
    assert ids.numel() == 3 * 6
    prompts = source_prompts(tok, ["a"], 2, cut)
    assert prompts.shape == (1, 3) and cut.sources == 3  # a short source is not counted


def test_characters_outside_the_tokenizer_name_their_line():
    tok = train_pair_tokenizer(SRC + TGT, 60)
    assert encode_checked(tok, ["a cat"])[0]
    with pytest.raises(ArdmError, match=r"source line 2: characters outside the tokenizer: 'Z'"):
        source_prompts(tok, ["a cat", "a Zebra"], 4)
    assert torch.equal(source_prompts(tok, ["cat"], 4), source_prompts(tok, ["cat"], 4))
