"""Seq2seq denoiser passes: the prefix denoiser against the encoder-decoder (docs/seq2seq.md).

    python benchmarks/seq2seq_speed.py [--batches 1,64] [--repeats 20] [--threads 1]
                                       [--out runs/bench/seq2seq_speed.json]

Builds both models of the Multi30k recipes (`multi30k-en-de`: 4 layers over source + target;
`multi30k-en-de-encdec`: 3 encoder layers over the source, 3 decoder layers over the target) with
random weights (speed does not depend on them; the vocabulary is the recipe's BPE size) and times
one denoising pass in eval mode, as a sampler's step runs it: the prefix denoiser re-reads the
source at every step; the encoder-decoder's first pass encodes the source, later passes of the same
sources reuse that encoding. The median over --repeats passes after one warm-up pass; prints a table
and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ardm.core.checkpoint import git_commit
from ardm.core.encoder_decoder import build_model
from ardm.training.recipes import get_recipe

RECIPES = ("multi30k-en-de", "multi30k-en-de-encdec")


def time_passes(recipe: str, batch: int, repeats: int) -> dict:
    cfg = get_recipe(recipe)
    cfg.model.vocab_size = cfg.data.bpe_vocab_size
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    L, P = cfg.data.seq_len, cfg.data.prefix_len
    tokens = torch.randint(0, cfg.model.vocab_size, (batch, L))
    tokens[:, P:] = cfg.model.mask_id
    t = torch.cat([torch.zeros(batch, P), torch.full((batch, L - P), 0.5)], 1)
    times = []
    with torch.no_grad():
        start = time.perf_counter()
        model(tokens, t)  # warm-up; for the encoder-decoder also the one encoding of these sources
        first_ms = (time.perf_counter() - start) * 1e3
        for _ in range(repeats):
            start = time.perf_counter()
            model(tokens, t)
            times.append((time.perf_counter() - start) * 1e3)
    ms = statistics.median(times)
    return {"recipe": recipe, "batch": batch, "params": sum(p.numel() for p in model.parameters()),
            "first_pass_ms": round(first_ms, 2), "pass_ms": round(ms, 2),
            "target_tokens_per_s": round(batch * (L - P) / (ms / 1e3), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes (default 1,64)")
    p.add_argument("--repeats", type=int, default=20, help="timed passes per configuration (default 20)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default="runs/bench/seq2seq_speed.json", help="JSON output path")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [time_passes(r, int(b), args.repeats) for b in args.batches.split(",") for r in RECIPES]
    print("| recipe | batch | params | first pass ms | pass ms (median) | target tokens/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['batch']} | {r['params']:,} | {r['first_pass_ms']} | {r['pass_ms']} "
              f"| {r['target_tokens_per_s']:,} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "threads": args.threads, "torch": torch.__version__,
                               "machine": platform.processor() or platform.machine(),
                               "git_commit": git_commit()}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
