"""Corpora, the train/validation split, and packing into fixed-length blocks.

Sources (`ardm.data.sources.load_corpus` picks one by the path's prefix):
- a text file (UTF-8; `.gz` is read transparently) or a `.jsonl` file with a text field;
- a folder: if it holds `train.*` and `valid.*`/`validation.*` files (WikiText style) those are the
  two splits, otherwise every `.txt`/`.jsonl` file inside, in sorted order, joined by newlines;
- `hf:NAME[:CONFIG]` for a Hugging Face dataset when the optional `datasets` package is installed
  (never needed offline).

Split (documented, deterministic): unless the source ships its own validation split, the last
`val_fraction` of the text, by characters, is validation and the rest is training. For Tiny
Shakespeare this is the usual first 90% / last 10%.

Packing into fixed-length windows: `ardm.data.tokens`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ardm.core.config import DataConfig
from ardm.errors import ArdmError

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
    # a parallel corpus (ardm.data.parallel): its (source, target) pairs; train / val above hold both
    # sides as text, which the shared BPE is trained on
    train_pairs: list[tuple[str, str]] | None = None
    val_pairs: list[tuple[str, str]] | None = None


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


def load_path(cfg: DataConfig) -> Corpus:
    """Read a text file, `.jsonl` file or folder named by `cfg.path` and split it (module docstring)."""
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
            corpus = split_text(text, cfg.val_fraction, str(path))
    else:
        corpus = split_text(_read_file(path, cfg.text_field, digest), cfg.val_fraction, str(path))
    corpus.sha256 = digest.hexdigest()
    if not corpus.train.strip():
        raise ArdmError(f"corpus {path} is empty")
    return corpus


def split_text(text: str, val_fraction: float, source: str) -> Corpus:
    if not text.strip():
        raise ArdmError(f"corpus {source} is empty")
    cut = int(len(text) * (1.0 - val_fraction))
    return Corpus(text[:cut], text[cut:], source, "")


def load_hf(cfg: DataConfig) -> Corpus:
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
        corpus = split_text(train, cfg.val_fraction, cfg.path)
    else:
        corpus = Corpus(train, "\n".join(ds[val_key][col]), cfg.path, "")
    corpus.sha256 = hashlib.sha256((corpus.train + corpus.val).encode()).hexdigest()
    return corpus


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
