"""`ardm seq2seq augment`: a concept-to-text corpus (CommonGen) with more training pairs whose
sources are concept sets drawn from its own training targets (ardm/data/concepts.py says why).

The train split becomes the original pairs followed by one drawn pair per distinct training target
(with >= 3 content words); every other split is copied unchanged, so validation and test still
score against the human references with the sets' own concepts.
"""

from __future__ import annotations

import time
from pathlib import Path

from ardm.data.concepts import concept_pairs, corpus_words
from ardm.data.parallel import aligned_pairs, find_split, pair_names, split_files, write_parallel_folder
from ardm.errors import ArdmError


def augment_corpus(data: str | Path, out: str | Path, *, pair: str = "src_alpha.txt,tgt.txt", seed: int = 0,
                   sizes: tuple[int, ...] = (3, 4, 5)) -> dict:
    """Write `out` (atomically): `data`'s aligned files with drawn concept pairs added to train.
    Returns the manifest written as `out/augment.json`."""
    start = time.perf_counter()
    folder = Path(data)
    if not folder.is_dir():
        raise ArdmError(f"--data {folder}: not a folder of aligned files")
    if not sizes or min(sizes) < 1:
        raise ArdmError(f"concept set sizes must be >= 1, got {sizes}")
    splits = split_files(folder, *pair_names(pair, "--pair"))
    src_file, tgt_file = find_split(splits, "train", str(folder))
    pairs = aligned_pairs(src_file, tgt_file)
    targets = [t for _, t in pairs]
    known = corpus_words(targets + [s for s, _ in pairs])
    drawn = concept_pairs(targets, known, seed=seed, sizes=sizes)
    manifest = {"source_corpus": str(folder), "pair": pair, "seed": seed, "sizes": list(sizes),
                "train_pairs_in": len(pairs), "drawn_pairs": len(drawn),
                "train_pairs_out": len(pairs) + len(drawn),
                "splits_copied": sorted(k for k in splits if k != "train"),
                "wall_time_s": round(time.perf_counter() - start, 1)}
    return write_parallel_folder(out, splits, pairs + drawn, "augment.json", manifest)
