"""Tokenizers: character level (vocabulary from the corpus) and byte-level BPE (`tokenizers`).

Both serialise to one JSON string stored in the checkpoint as `tokenizer.json`.
"""

from __future__ import annotations

import json
from typing import Protocol

import numpy as np

from ardm.errors import ArdmError


class Tokenizer(Protocol):
    kind: str

    @property
    def vocab_size(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def encode_array(self, text: str) -> np.ndarray: ...
    def decode(self, ids: list[int]) -> str: ...
    def to_json(self) -> str: ...


class CharTokenizer:
    """One id per distinct character of the training corpus, sorted by code point."""

    kind = "char"

    def __init__(self, chars: list[str]):
        if not chars:
            raise ArdmError("character vocabulary is empty (empty corpus?)")
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}
        # fast path for encoding large texts: a code-point lookup table
        self._table = np.full(max(map(ord, self.chars)) + 1, -1, dtype=np.int64)
        for i, c in enumerate(self.chars):
            self._table[ord(c)] = i

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.where(codes < len(self._table), self._table[np.minimum(codes, len(self._table) - 1)], -1)
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            missing = sorted({text[i] for i in bad[:1000]})
            raise ArdmError(f"text contains {bad.size} character(s) outside the tokenizer's vocabulary, "
                            f"e.g. {''.join(missing[:10])!r} (first at character {bad[0]})")
        return ids

    def decode(self, ids: list[int]) -> str:
        n = len(self.chars)
        return "".join(self.chars[i] if 0 <= i < n else "\u2588" for i in ids)  # █ marks MASK/unknown

    def to_json(self) -> str:
        return json.dumps({"ardm_tokenizer": "char", "chars": self.chars}, ensure_ascii=False)


class BPETokenizer:
    """Byte-level BPE trained with the Hugging Face `tokenizers` library; covers any UTF-8 text."""

    kind = "bpe"

    def __init__(self, tok):
        self.tok = tok

    @classmethod
    def train(cls, text_iter, vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(text_iter, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def encode_array(self, text: str) -> np.ndarray:
        # encode line by line in a batch: far faster than one giant string, and lossless
        lines = text.splitlines(keepends=True)
        enc = self.tok.encode_batch(lines)
        return np.fromiter((i for e in enc for i in e.ids), dtype=np.int64)

    def decode(self, ids: list[int]) -> str:
        n = self.vocab_size
        return self.tok.decode([i for i in ids if 0 <= i < n])

    def to_json(self) -> str:
        return self.tok.to_str()


def tokenizer_from_json(s: str) -> Tokenizer:
    try:
        d = json.loads(s)
    except json.JSONDecodeError as e:
        raise ArdmError(f"tokenizer file is not valid JSON ({e})") from None
    if isinstance(d, dict) and d.get("ardm_tokenizer") == "char":
        chars = d.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1
                                                  for c in chars):
            raise ArdmError("char tokenizer file is malformed: 'chars' must be a list of "
                            "single characters")
        return CharTokenizer(chars)
    if isinstance(d, dict) and isinstance(d.get("model"), dict) and d["model"].get("type") == "BPE":
        from tokenizers import Tokenizer as HFTokenizer

        try:
            return BPETokenizer(HFTokenizer.from_str(s))
        except Exception as e:
            raise ArdmError(f"BPE tokenizer file is malformed ({e})") from None
    raise ArdmError("tokenizer file has an unknown format (expected a char or BPE tokenizer)")
