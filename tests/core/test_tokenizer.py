"""ardm.core.tokenizer: char and byte-level BPE tokenizers, and their JSON serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ardm.core.tokenizer import BPETokenizer, CharTokenizer, tokenizer_from_json
from ardm.errors import ArdmError

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n"
UNICODE = "naïve café — Ελληνικά, 日本語, emoji 😀🚀 and tabs\tand\nnewlines\r\n"


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    lines = (TEXT * 20 + UNICODE * 5).splitlines(keepends=True)
    return BPETokenizer.train(iter(lines), vocab_size=300)


def test_char_vocab_is_sorted_distinct_characters():
    """The char vocabulary is the sorted set of corpus characters, one id each."""
    tok = CharTokenizer.train(TEXT)
    assert tok.chars == sorted(set(TEXT))
    assert tok.vocab_size == len(set(TEXT))
    assert tok.encode("a") == [tok.chars.index("a")]


def test_char_round_trip():
    """decode(encode(s)) == s for any text over the vocabulary, including non-ASCII."""
    tok = CharTokenizer.train(TEXT + UNICODE)
    for s in (TEXT, UNICODE, "", "😀a😀", TEXT[::-1]):
        ids = tok.encode(s)
        assert len(ids) == len(s)
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == s
    assert np.array_equal(tok.encode_array(TEXT), np.array(tok.encode(TEXT)))


def test_char_unknown_character_raises_naming_it():
    """Encoding a character outside the vocabulary raises ArdmError that shows the character."""
    tok = CharTokenizer.train("abc")
    for bad in ("Z", "é", "😀", "\x00"):
        with pytest.raises(ArdmError) as e:
            tok.encode("ab" + bad + "c")
        assert repr(bad)[1:-1] in str(e.value)
        assert "at character 2" in str(e.value)


def test_char_decode_marks_out_of_vocab_ids():
    """Ids outside the vocabulary (MASK = vocab_size) decode to a visible placeholder."""
    tok = CharTokenizer.train("ab")
    out = tok.decode([0, tok.vocab_size, 1])
    assert out[0] == "a" and out[2] == "b" and out[1] not in "ab"


def test_char_empty_vocabulary_rejected():
    """An empty corpus gives no vocabulary, which is an ArdmError."""
    with pytest.raises(ArdmError):
        CharTokenizer.train("")


def test_char_json_round_trip():
    """tokenizer_from_json(to_json()) rebuilds an identical char tokenizer."""
    tok = CharTokenizer.train(TEXT + UNICODE)
    again = tokenizer_from_json(tok.to_json())
    assert isinstance(again, CharTokenizer) and again.kind == "char"
    assert again.chars == tok.chars
    assert again.encode(UNICODE) == tok.encode(UNICODE)


def test_bpe_vocab_and_round_trip_of_any_utf8(bpe):
    """Byte-level BPE encodes any UTF-8 text (even unseen scripts) and decodes it losslessly."""
    assert 256 <= bpe.vocab_size <= 300
    unseen = "Привет мир ✓ 🤖🧪 \u200b zero-width, ñ, 中文"
    for s in (TEXT, UNICODE, unseen, "", " leading space", "x" * 50):
        ids = bpe.encode(s)
        assert all(0 <= i < bpe.vocab_size for i in ids)
        assert bpe.decode(ids) == s


def test_bpe_merges_learned(bpe):
    """Training learned merges: frequent text takes fewer tokens than bytes."""
    assert len(bpe.encode(TEXT)) < len(TEXT.encode("utf-8")) * 0.8


def test_bpe_encode_array_matches_text(bpe):
    """The line-batched fast path decodes back to the same text."""
    text = TEXT + UNICODE + TEXT
    arr = bpe.encode_array(text)
    assert arr.dtype == np.int64
    assert bpe.decode(arr.tolist()) == text


def test_bpe_json_round_trip(bpe):
    """tokenizer_from_json(to_json()) rebuilds a BPE tokenizer that encodes identically."""
    again = tokenizer_from_json(bpe.to_json())
    assert isinstance(again, BPETokenizer) and again.kind == "bpe"
    assert again.vocab_size == bpe.vocab_size
    for s in (TEXT, UNICODE):
        assert again.encode(s) == bpe.encode(s)
        assert again.decode(again.encode(s)) == s


@pytest.mark.parametrize("garbage", [
    "", "not json", "{", "[1, 2, 3]", "42", '"char"', "{}",
    json.dumps({"ardm_tokenizer": "word", "chars": ["a"]}),
    json.dumps({"model": {"type": "WordPiece"}}),
    json.dumps({"ardm_tokenizer": "char", "chars": []}),
    json.dumps({"ardm_tokenizer": "char"}),
    json.dumps({"ardm_tokenizer": "char", "chars": "abc"}),
    json.dumps({"ardm_tokenizer": "char", "chars": ["ab", "c"]}),
    json.dumps({"ardm_tokenizer": "char", "chars": [1, 2]}),
    json.dumps({"model": {"type": "BPE"}}),
])
def test_garbage_json_raises_ardm_error(garbage):
    """Anything that is not a serialised char/BPE tokenizer is an ArdmError, not a crash."""
    with pytest.raises(ArdmError):
        tokenizer_from_json(garbage)
