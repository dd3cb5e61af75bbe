"""Sequence-level knowledge distillation (Kim & Rush 2016, SPEC §11.7): the AR twin's beam-search
outputs replace the training targets of a parallel corpus.

Non-autoregressive and diffusion translation models train on such distilled targets (Gu et al. 2018;
CMLM, DiffuSeq-v2): one teacher output per source is less multimodal than the human references, so a
denoiser that commits several tokens per step mixes fewer incompatible continuations ("einem einem").
`distill_corpus(teacher, out)` writes a folder of aligned files with the same names and splits as
the teacher's corpus: the train split distilled (one pair per distinct source), every other split
copied as it is, so validation and test still score against the human references.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from ardm.core.checkpoint import MODEL_FILE, load, read_checkpoint
from ardm.data.parallel import (
    EOS,
    Truncation,
    aligned_pairs,
    find_split,
    pair_names,
    source_prompts,
    special_ids,
    split_files,
    write_parallel_folder,
)
from ardm.errors import ArdmError
from ardm.tasks.seq2seq.beam import beam_search
from ardm.tasks.seq2seq.decoding import layout, texts_of


def _teacher_outputs(loaded, sources: list[str], lengths: tuple[int, int], beam: int, batch_size: int,
                     progress: bool) -> tuple[list[str], Truncation]:
    src_len, tgt_len = lengths
    cut = Truncation()
    prompts = source_prompts(loaded.tokenizer, sources, src_len, cut)
    eos = special_ids(loaded.tokenizer)[EOS]
    out: list[str] = []
    for b0 in tqdm(range(0, len(sources), batch_size), desc="distill", disable=not progress):
        tokens, _ = beam_search(loaded.model, prompts[b0:b0 + batch_size], tgt_len, eos, beam)
        out += texts_of(loaded, tokens, prompts.shape[1])
    return out, cut


def distill_corpus(teacher: str | Path, out: str | Path, *, beam: int = 4, batch_size: int = 256,
                   data: str | None = None, num: int = 0, progress: bool = True) -> dict:
    """Write `out`: the teacher's parallel corpus (or `data`) with the train targets replaced by the
    teacher's beam-search outputs (one per distinct source; a source the teacher leaves empty keeps
    its first reference). num > 0: the first `num` distinct training sources only (a quick check).
    Returns the manifest written as `out/distill.json`."""
    start = time.perf_counter()
    loaded = load(teacher, "cpu")
    if not loaded.model.cfg.causal:
        raise ArdmError(f"--teacher {teacher}: not an AR twin (a causal seq2seq checkpoint); distillation "
                        "decodes the training sources with its beam search")
    lengths = layout(loaded)  # a seq2seq checkpoint, or one ArdmError before any corpus is read
    cfg = loaded.config.data
    folder = Path(data or cfg.path)
    if not folder.is_dir():
        raise ArdmError(f"distillation needs a folder of aligned files; {folder} is not a folder")
    splits = split_files(folder, *pair_names(cfg.pair))
    src_file, tgt_file = find_split(splits, "train", str(folder))
    pairs = aligned_pairs(src_file, tgt_file)
    first: dict[str, str] = {}
    for s, t in pairs:
        first.setdefault(s, t)
    sources = list(first)[:num] if num > 0 else list(first)
    with torch.no_grad():
        hyps, cut = _teacher_outputs(loaded, sources, lengths, beam, batch_size, progress)
    empty = [not h.strip() for h in hyps]
    targets = [first[s] if e else h for s, h, e in zip(sources, hyps, empty)]
    sha = read_checkpoint(loaded.path).files[MODEL_FILE]["sha256"]
    manifest = {"teacher": str(loaded.path), "teacher_model_sha256": sha, "source_corpus": str(folder),
                "pair": cfg.pair, "beam": beam, "train_pairs_in": len(pairs),
                "distinct_sources": len(sources), "empty_outputs_kept_reference": sum(empty),
                "truncated_sources": cut.sources, "splits_copied": sorted(k for k in splits if k != "train")}
    manifest["wall_time_s"] = round(time.perf_counter() - start, 1)
    return write_parallel_folder(out, splits, list(zip(sources, targets)), "distill.json", manifest)
