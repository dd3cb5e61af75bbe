"""ardm.data.corpus: corpus loading and splitting, input validation, and block packing."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
import torch

from ardm.core.config import DataConfig
from ardm.core.tokenizer import CharTokenizer
from ardm.data.corpus import file_sha256
from ardm.data.sources import load_corpus
from ardm.data.tokens import BlockSampler, encode, eval_blocks, train_tokenizer
from ardm.errors import ArdmError
from ardm.training.recipes import bundled_corpus


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(path=str(path), **kw)


def _text(n: int) -> str:
    g = torch.Generator().manual_seed(n)
    return "".join(chr(ord("a") + int(i)) for i in torch.randint(0, 26, (n,), generator=g))


@pytest.mark.parametrize("n, frac",
                         [(1000, 0.1), (1000, 0.25), (977, 0.1), (12345, 0.3), (10, 0.5)])
def test_txt_split_is_last_fraction_by_characters(tmp_path, n, frac):
    """train + val is the whole text in order, and val is its last val_fraction characters."""
    text = _text(n)
    p = tmp_path / "c.txt"
    p.write_text(text, encoding="utf-8")
    c = load_corpus(_cfg(p, val_fraction=frac))
    assert c.train + c.val == text
    assert abs(len(c.val) - n * frac) < 1.0
    assert c.source == str(p)


def test_split_counts_characters_not_bytes(tmp_path):
    """Multi-byte characters count once: the split is by characters of the decoded text."""
    text = "é" * 50 + "😀" * 50
    p = tmp_path / "u.txt"
    p.write_text(text, encoding="utf-8")
    c = load_corpus(_cfg(p, val_fraction=0.5))
    assert c.train == "é" * 50 and c.val == "😀" * 50


def test_gzip_is_read_transparently(tmp_path):
    """A .gz file gives the same text as the uncompressed file."""
    text = _text(500)
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(text.encode()))
    a = load_corpus(_cfg(tmp_path / "a.txt"))
    b = load_corpus(_cfg(tmp_path / "b.txt.gz"))
    assert (a.train, a.val) == (b.train, b.val)


def test_folder_with_train_and_valid_uses_them_as_splits(tmp_path):
    """A folder holding train.* and valid.* uses those files as the two splits, unsplit."""
    (tmp_path / "train.txt").write_text("the training text\n")
    (tmp_path / "valid.txt").write_text("held-out text\n")
    (tmp_path / "test.txt").write_text("test text, not used\n")
    c = load_corpus(_cfg(tmp_path, val_fraction=0.5))
    assert c.train == "the training text\n"
    assert c.val == "held-out text\n"


def test_folder_without_splits_joins_files_in_sorted_order(tmp_path):
    """Without train/valid files, all text files are joined (sorted, newline) and then split."""
    (tmp_path / "b.txt").write_text("B" * 50)
    (tmp_path / "a.txt").write_text("A" * 49)
    c = load_corpus(_cfg(tmp_path, val_fraction=0.5))
    assert c.train + c.val == "A" * 49 + "\n" + "B" * 50
    assert c.val == "B" * 50


def test_jsonl_text_field(tmp_path):
    """A .jsonl file contributes the chosen field of each record, joined by newlines."""
    p = tmp_path / "d.jsonl"
    recs = [{"text": "first line", "id": 1}, {"text": "second", "id": 2},
            {"body": "x", "text": "3"}]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    c = load_corpus(_cfg(p, val_fraction=0.1))
    assert c.train + c.val == "first line\nsecond\n3"
    p2 = tmp_path / "e.jsonl"
    p2.write_text("\n".join(json.dumps({"body": r["text"]}) for r in recs))
    c2 = load_corpus(_cfg(p2, val_fraction=0.1, text_field="body"))
    assert c2.train + c2.val == "first line\nsecond\n3"


def test_jsonl_missing_field_names_line_number(tmp_path):
    """A record without the text field raises ArdmError with file:line of that record."""
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "ok"}\n{"content": "no text field"}\n')
    with pytest.raises(ArdmError, match=r"d\.jsonl:3:.*'text'"):
        load_corpus(_cfg(p))


def test_jsonl_invalid_json_names_line_number(tmp_path):
    """A line that is not JSON raises ArdmError with its line number."""
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\n{"text": oops}\n')
    with pytest.raises(ArdmError, match=r"d\.jsonl:2:"):
        load_corpus(_cfg(p))


@pytest.mark.parametrize("content, needle", [
    (b"", "empty"),
    (b"   \n\n\t  \r\n", "empty"),
    (b"some text\x00\x01\x02 binary", "binary"),
    (b"caf\xe9 latin-1 text", "UTF-8"),
    (b"\xff\xfe\x00\x00", "binary"),
])
def test_bad_files_raise_ardm_error(tmp_path, content, needle):
    """Empty, whitespace-only, binary (NUL bytes) and non-UTF-8 files are clear ArdmErrors."""
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(ArdmError, match=needle):
        load_corpus(_cfg(p))


def test_missing_path_and_empty_folder_raise(tmp_path):
    """A path that does not exist, no path, or a folder without text files is an ArdmError."""
    with pytest.raises(ArdmError, match="not found"):
        load_corpus(_cfg(tmp_path / "nope.txt"))
    with pytest.raises(ArdmError, match="no corpus"):
        load_corpus(DataConfig(path=""))
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(ArdmError, match="no .txt"):
        load_corpus(_cfg(tmp_path))


def test_bad_gzip_raises(tmp_path):
    """A .gz file that is not gzip is an ArdmError."""
    p = tmp_path / "c.txt.gz"
    p.write_bytes(b"plain text, not gzip")
    with pytest.raises(ArdmError, match="gzip"):
        load_corpus(_cfg(p))


def test_sha256_deterministic_and_content_sensitive(tmp_path):
    """The corpus checksum is the same for the same bytes and changes with any edit."""
    p = tmp_path / "c.txt"
    p.write_text("hello world, hello corpus\n")
    a, b = load_corpus(_cfg(p)), load_corpus(_cfg(p))
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    assert a.sha256 == file_sha256(p)
    p.write_text("hello world, hello corpus!\n")
    assert load_corpus(_cfg(p)).sha256 != a.sha256


def test_bundled_corpus_loads():
    """The public-domain corpus shipped with the package is readable and non-trivial."""
    c = load_corpus(DataConfig(path=bundled_corpus()))
    assert len(c.train) > 1000 and len(c.val) > 100
    tok = train_tokenizer(DataConfig(path=bundled_corpus()), c)
    assert tok.decode(encode(tok, c.val).tolist()) == c.val


def test_char_tokenizer_covers_validation_characters(tmp_path):
    """The char vocabulary includes characters that only occur in the validation split."""
    p = tmp_path / "c.txt"
    p.write_text("a" * 90 + "Z" * 10)
    cfg = _cfg(p, val_fraction=0.1)
    c = load_corpus(cfg)
    tok = train_tokenizer(cfg, c)
    assert "Z" not in c.train and "Z" in tok.chars
    assert encode(tok, c.val).tolist() == [tok.chars.index("Z")] * 10


def test_encode_returns_int64_tensor():
    """encode gives a 1-D int64 tensor of the tokenizer's ids."""
    tok = CharTokenizer.train("abc")
    ids = encode(tok, "cab")
    assert ids.dtype == torch.int64 and ids.tolist() == [2, 0, 1]


def test_block_sampler_too_short_stream_raises():
    """A stream shorter than one block plus one token is an ArdmError."""
    with pytest.raises(ArdmError, match="seq_len"):
        BlockSampler(torch.arange(8), seq_len=8, seed=0)
    BlockSampler(torch.arange(9), seq_len=8, seed=0)  # exactly seq_len + 1 is enough


def test_block_sampler_shapes_and_contiguous_windows():
    """Batches are [B, length] windows, each a contiguous slice of the stream."""
    ids = torch.arange(100)
    s = BlockSampler(ids, seq_len=8, seed=3)
    x = s.batch(16)
    assert x.shape == (16, 8) and x.dtype == ids.dtype
    assert torch.equal(x - x[:, :1], torch.arange(8).expand(16, 8))  # consecutive ids
    assert x.min() >= 0 and x.max() <= 99
    y = s.batch(5, length=9)  # the causal objective asks for seq_len + 1
    assert y.shape == (5, 9)
    assert torch.equal(y - y[:, :1], torch.arange(9).expand(5, 9))


def test_block_sampler_covers_all_starts():
    """Window starts range over the whole stream, including both ends."""
    s = BlockSampler(torch.arange(12), seq_len=4, seed=0)
    starts = {int(v) for v in s.batch(400)[:, 0]}
    assert starts == set(range(12 - 4 + 1))


def test_block_sampler_seeded():
    """The same seed gives the same batch sequence; a different seed a different one."""
    ids = torch.randint(0, 50, (500,), generator=torch.Generator().manual_seed(0))
    a, b, c = (BlockSampler(ids, 16, seed) for seed in (7, 7, 8))
    batches_a = [a.batch(4) for _ in range(3)]
    batches_b = [b.batch(4) for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(batches_a, batches_b))
    assert not torch.equal(batches_a[0], c.batch(4))


def test_eval_blocks_cover_stream_in_order_without_overlap():
    """Windows tile the stream from the start, in order; a partial tail is dropped."""
    ids = torch.arange(50)
    w = eval_blocks(ids, seq_len=8)
    assert w.shape == (6, 8)
    assert torch.equal(w.flatten(), ids[:48])


def test_eval_blocks_overlap_one_shares_exactly_one_token():
    """With overlap=1 each window is seq_len + 1 long and starts with its predecessor's last."""
    ids = torch.arange(50)
    w = eval_blocks(ids, seq_len=8, overlap=1)
    assert w.shape == (6, 9)
    for a, b in itertools.pairwise(w):
        assert a[-1] == b[0]
        assert len(set(a.tolist()) & set(b.tolist())) == 1
    # the scored tokens (all but each window's first) tile the stream after token 0
    assert torch.equal(w[:, 1:].flatten(), ids[1:49])
    assert eval_blocks(torch.arange(49), 8, overlap=1).shape == (6, 9)
    assert eval_blocks(torch.arange(48), 8, overlap=1).shape == (5, 9)


def test_eval_blocks_too_short_raises():
    """Fewer tokens than one window is an ArdmError."""
    with pytest.raises(ArdmError):
        eval_blocks(torch.arange(7), seq_len=8)
    with pytest.raises(ArdmError):
        eval_blocks(torch.arange(8), seq_len=8, overlap=1)
