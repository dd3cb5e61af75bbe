"""Corpora, the train/validation split, and packing into fixed-length blocks.

Sources (`load_corpus`):
- a text file (UTF-8; `.gz` is read transparently) or a `.jsonl` file with a text field;
- a folder: if it holds `train.*` and `valid.*`/`validation.*` files (WikiText style) those are the
  two splits, otherwise every `.txt`/`.jsonl` file inside, in sorted order, joined by newlines;
- `hf:NAME[:CONFIG]` for a Hugging Face dataset when the optional `datasets` package is installed
  (never needed offline).

Split (documented, deterministic): unless the source ships its own validation split, the last
`val_fraction` of the text, by characters, is validation and the rest is training. For Tiny
Shakespeare this is the usual first 90% / last 10%.

Packing: the tokenized split is one long id stream. Training draws random windows of `seq_len`
tokens (a seeded generator, so runs resume exactly); evaluation walks non-overlapping windows
from the start, so it is deterministic and covers the split once.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import DataConfig
from .errors import ArdmError
from .tokenizer import BPETokenizer, CharTokenizer, Tokenizer

TEXT_SUFFIXES = (".txt", ".raw", ".tokens", ".text", ".md", ".gz", ".jsonl", "")


@dataclass
class Corpus:
    train: str
    val: str
    source: str
    sha256: str  # checksum of the raw bytes read (recorded in results and checkpoints)
    # optional per-character masks of positions that training keeps clean (Sudoku givens); they
    # need a character tokenizer, where one character is one token
    train_clean: np.ndarray | None = None
    val_clean: np.ndarray | None = None


def _read_file(path: Path, text_field: str, digest) -> str:
    raw = path.read_bytes()
    digest.update(raw)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            raise ArdmError(f"corpus file {path} is not valid gzip ({e})") from None
    if b"\x00" in raw[:1 << 20]:
        raise ArdmError(f"corpus file {path} looks binary (it contains NUL bytes); expected text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArdmError(f"corpus file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz"):
        out = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ArdmError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict) or text_field not in rec:
                raise ArdmError(f"{path}:{lineno}: record has no text field {text_field!r} "
                                "(choose it with --set data.text_field=NAME)")
            out.append(str(rec[text_field]))
        text = "\n".join(out)
    return text


def _split_files(folder: Path) -> tuple[Path | None, Path | None]:
    files = {p.name.split(".")[0]: p for p in sorted(folder.iterdir()) if p.is_file()}
    train = files.get("train")
    val = files.get("valid") or files.get("validation") or files.get("val")
    return train, val


def load_corpus(cfg: DataConfig) -> Corpus:
    """Read the corpus named by `cfg.path` and split it (see the module docstring)."""
    if not cfg.path:
        raise ArdmError("no corpus given: pass --data PATH (a text file, a .jsonl file or a folder)")
    if cfg.path.startswith("hf:"):
        return _load_hf(cfg)
    if cfg.path.startswith(("sudoku:", "sudoku-puzzles:")):
        from .sudoku.corpus import sudoku_corpus

        return sudoku_corpus(cfg.path, cfg.val_fraction)
    path = Path(cfg.path)
    if not path.exists():
        raise ArdmError(f"corpus not found: {path}")
    digest = hashlib.sha256()
    if path.is_dir():
        train_file, val_file = _split_files(path)
        if train_file and val_file:
            corpus = Corpus(_read_file(train_file, cfg.text_field, digest),
                            _read_file(val_file, cfg.text_field, digest), str(path), "")
        else:
            files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES
                     and not p.name.startswith(".")]
            if not files:
                raise ArdmError(f"corpus folder {path} holds no .txt/.jsonl files")
            text = "\n".join(_read_file(p, cfg.text_field, digest) for p in files)
            corpus = _split_text(text, cfg.val_fraction, str(path))
    else:
        corpus = _split_text(_read_file(path, cfg.text_field, digest), cfg.val_fraction, str(path))
    corpus.sha256 = digest.hexdigest()
    if not corpus.train.strip():
        raise ArdmError(f"corpus {path} is empty")
    return corpus


def load_corpus_like(cfg: DataConfig, path: str | None = None) -> Corpus:
    """The corpus of a run's data config, or another corpus read and split the same way."""
    return load_corpus(dataclasses.replace(cfg, path=path or cfg.path))


def _split_text(text: str, val_fraction: float, source: str) -> Corpus:
    if not text.strip():
        raise ArdmError(f"corpus {source} is empty")
    cut = int(len(text) * (1.0 - val_fraction))
    return Corpus(text[:cut], text[cut:], source, "")


def _load_hf(cfg: DataConfig) -> Corpus:
    try:
        import datasets  # optional extra: pip install 'ardm[hf]'
    except ImportError:
        raise ArdmError("hf: corpora need the optional 'datasets' package (pip install 'ardm[hf]')") from None
    name, _, config = cfg.path[3:].partition(":")
    try:
        ds = datasets.load_dataset(name, config or None)
    except Exception as e:
        raise ArdmError(f"could not load Hugging Face dataset {name!r}: {e}") from None
    col = cfg.text_field
    train = "\n".join(ds["train"][col])
    val_key = next((k for k in ("validation", "valid", "test") if k in ds), None)
    if val_key is None:
        corpus = _split_text(train, cfg.val_fraction, cfg.path)
    else:
        corpus = Corpus(train, "\n".join(ds[val_key][col]), cfg.path, "")
    corpus.sha256 = hashlib.sha256((corpus.train + corpus.val).encode()).hexdigest()
    return corpus


def train_tokenizer(cfg: DataConfig, corpus: Corpus) -> Tokenizer:
    """Build the tokenizer from the training split only (no validation leakage)."""
    if cfg.tokenizer == "char":
        # the validation split may hold characters the training split lacks; include them in the
        # vocabulary so evaluation can encode it (their embeddings simply stay untrained).
        return CharTokenizer.train(corpus.train + corpus.val)
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


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
