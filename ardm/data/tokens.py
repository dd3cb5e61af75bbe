"""Tokens of a corpus: the tokenizer built from it, its id stream, and fixed-length windows.

Training draws random windows of `seq_len` tokens from one id stream (a seeded generator, so runs
resume exactly); evaluation walks non-overlapping windows from the start, so it is deterministic and
covers the split once.
"""

from __future__ import annotations

import numpy as np
import torch

from ardm.core.config import DataConfig
from ardm.core.tokenizer import BPETokenizer, CharTokenizer, Tokenizer
from ardm.data.corpus import Corpus
from ardm.data.parallel import train_pair_tokenizer
from ardm.errors import ArdmError


def train_tokenizer(cfg: DataConfig, corpus: Corpus) -> Tokenizer:
    """Build the tokenizer from the training split only (no validation leakage)."""
    if cfg.tokenizer == "char":
        # the validation split may hold characters the training split lacks; include them in the
        # vocabulary so evaluation can encode it (their embeddings simply stay untrained).
        return CharTokenizer.train(corpus.train + corpus.val)
    if corpus.train_pairs is not None:  # seq2seq: one BPE for both sides; val adds characters only
        texts = [x for pair in corpus.train_pairs for x in pair]
        return train_pair_tokenizer(texts, cfg.bpe_vocab_size, extra_chars=corpus.val)
    lines = corpus.train.splitlines(keepends=True)
    return BPETokenizer.train(_batched(lines), cfg.bpe_vocab_size)


def _batched(lines: list[str], size: int = 1000):
    for i in range(0, len(lines), size):
        yield "".join(lines[i:i + size])


def encode(tokenizer: Tokenizer, text: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(tokenizer.encode_array(text)))


class BlockSampler:
    """Random fixed-length training windows from one id stream, from a seeded generator."""

    def __init__(self, ids: torch.Tensor, seq_len: int, seed: int, stride: int = 1,
                 clean: torch.Tensor | None = None):
        if ids.numel() < seq_len + 1:
            raise ArdmError(f"training split has {ids.numel()} tokens, fewer than one block of "
                            f"{seq_len + 1}; use a longer corpus or a smaller --set data.seq_len")
        self.ids = ids
        self.clean = clean  # optional [N] bool, aligned with ids (Corpus.train_clean)
        self.seq_len = seq_len
        self.stride = max(stride, 1)  # windows start at multiples of it (data.record_len)
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, batch_size: int, length: int | None = None) -> torch.Tensor:
        """[B, length] windows; `length` defaults to seq_len (causal training asks seq_len + 1)."""
        return self.batch_with_clean(batch_size, length)[0]

    def batch_with_clean(self, batch_size: int, length: int | None = None):
        """([B, length] windows, their [B, length] clean masks or None without a mask)."""
        length = length or self.seq_len
        last = (self.ids.numel() - length) // self.stride
        starts = torch.randint(0, last + 1, (batch_size,), generator=self.generator) * self.stride
        idx = starts[:, None] + torch.arange(length)
        return self.ids[idx], None if self.clean is None else self.clean[idx]


def eval_blocks(ids: torch.Tensor, seq_len: int, overlap: int = 0) -> torch.Tensor:
    """Non-overlapping [W, seq_len + overlap] windows starting every seq_len tokens.

    overlap = 1 gives causal models the previous token as context for each window's first target.
    """
    n = (ids.numel() - overlap) // seq_len
    if n < 1:
        raise ArdmError(f"evaluation text has {ids.numel()} tokens, fewer than one block of "
                        f"{seq_len + overlap}")
    idx = torch.arange(n)[:, None] * seq_len + torch.arange(seq_len + overlap)[None, :]
    return ids[idx]
