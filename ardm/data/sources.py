"""Corpus sources behind one registry: `--data` / `data.path` is a path, or PREFIX:SPEC.

`CORPUS_SOURCES` maps a prefix to a builder `(DataConfig) -> Corpus`; a path without a registered
prefix is a text file, `.jsonl` file or folder (`ardm.data.corpus.load_path`). Registered here:
`hf:NAME[:CONFIG]` (optional `datasets` package), `sudoku:N[:SEED]` and `sudoku-puzzles:N[:SEED]`
(synthetic grids, `ardm.data.sudoku_corpus`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ardm.core.config import DataConfig
from ardm.core.registry import Registry
from ardm.data.corpus import Corpus, load_hf, load_path
from ardm.data.parallel import load_parallel
from ardm.data.sudoku_corpus import sudoku_corpus
from ardm.errors import ArdmError

CORPUS_SOURCES: Registry[Callable[[DataConfig], Corpus]] = Registry("corpus source", "corpus sources")
CORPUS_SOURCES.add("hf", load_hf)
CORPUS_SOURCES.add("sudoku", lambda cfg: sudoku_corpus(cfg.path, cfg.val_fraction))
CORPUS_SOURCES.add("sudoku-puzzles", lambda cfg: sudoku_corpus(cfg.path, cfg.val_fraction))


def source_of(path: str) -> str | None:
    """The registered prefix of a `data.path`, or None for a plain path (a Windows drive letter or a
    path with a colon in a folder name is a path, not a prefix)."""
    prefix, sep, _ = path.partition(":")
    return prefix if sep and prefix in CORPUS_SOURCES else None


def load_corpus(cfg: DataConfig) -> Corpus:
    """Read and split the corpus named by `cfg.path` (see `ardm.data.corpus` for the split)."""
    if not cfg.path:
        raise ArdmError("no corpus given: pass --data PATH (a text file, a .jsonl file or a folder)")
    if cfg.source_len:  # seq2seq: a parallel corpus (SPEC §11.7)
        return load_parallel(cfg)
    prefix = source_of(cfg.path)
    return load_path(cfg) if prefix is None else CORPUS_SOURCES[prefix](cfg)


def load_corpus_like(cfg: DataConfig, path: str | None = None) -> Corpus:
    """The corpus of a run's data config, or another corpus read and split the same way."""
    return load_corpus(dataclasses.replace(cfg, path=path or cfg.path))
