"""Compression benchmark: the real rANS bitstream of `ardm compress` against the model's NLL
(overhead) and against gzip -9, xz -9, zstd -19 and brotli (when installed), at several budgets,
with throughput. Prints a table and writes JSON.

    python benchmarks/compression.py --checkpoint runs/shakespeare-char-oa \\
        --data ../shared/data/tinyshakespeare/input.txt --chars 10000 --budgets 16,64,256

The input is --chars characters of the corpus's validation split (held out from training), from
its start or --skip characters in.
With --plan FILE (`ardm plan --checkpoint DIR --budget K --save FILE`) each budget is also coded
with the planner's step sizes (SPEC §4.3) beside the equal ones. An armd checkpoint is coded both
ways (SPEC §5.3): K cached steps on both sides (`cached`, the default of `ardm compress`) and the
one-pass encoder with its K-full-pass decoder (`one-pass`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import shutil
import subprocess
import time
from pathlib import Path

import ardm
from ardm.core.checkpoint import atomic_write_text, git_commit
from ardm.data.sources import load_corpus_like
from ardm.generation.planner import load_loss_components
from ardm.tasks.compression import compress, decompress


def baselines(data: bytes) -> dict[str, int]:
    out = {"gzip -9": len(gzip.compress(data, 9)), "xz -9": len(lzma.compress(data, preset=9))}
    tools = (("zstd -19", ["zstd", "-19", "-c", "-q"]), ("brotli -q 11", ["brotli", "-q", "11", "-c"]))
    for name, cmd in tools:
        if shutil.which(cmd[0]):
            out[name] = len(subprocess.run(cmd, input=data, capture_output=True, check=True).stdout)
    try:
        import brotli  # optional Python package

        out.setdefault("brotli -q 11", len(brotli.compress(data, quality=11)))
    except ImportError:
        pass
    return out


def row(budget, steps, blob, st, text, enc_s, dec_s) -> dict:
    kb = len(text.encode("utf-8")) / 1024
    return {"budget": budget, "steps": steps, "bits_per_char": 8 * len(blob) / len(text),
            "payload_bits_per_char": st.bits_per_char,
            "model_nll_bits_per_char": st.model_nll_bits / len(text), "overhead": st.overhead,
            "encode_kb_per_s": kb / enc_s, "decode_kb_per_s": kb / dec_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", help="corpus (default: the checkpoint's)")
    ap.add_argument("--chars", type=int, default=10000)
    ap.add_argument("--skip", type=int, default=0,
                    help="start this many characters into the validation split (e.g. past the windows "
                         "`ardm plan` measured its loss components on)")
    ap.add_argument("--budgets", default="16,64,256")
    ap.add_argument("--out", default="runs/bench/compression.json")
    ap.add_argument("--drop-unencodable-lines", action="store_true",
                    help="for text the model was not trained on: drop lines with characters outside its "
                         "vocabulary (reported) instead of refusing the input")
    ap.add_argument("--plan", help="loss components from `ardm plan --save`: also code each budget with "
                                   "the planner's steps")
    args = ap.parse_args()
    plans = {"equal": None} | ({"planned": load_loss_components(args.plan)} if args.plan else {})
    loaded = ardm.load(args.checkpoint)
    if loaded.model.cfg.attention == "armd":
        plans = {"cached": None, "one-pass": None}
    dcfg = loaded.config.data
    corpus = load_corpus_like(dcfg, args.data)
    text, dropped = corpus.val, 0
    if args.drop_unencodable_lines:
        vocab = set(loaded.tokenizer.decode(list(range(loaded.tokenizer.vocab_size))))
        lines = text.splitlines(keepends=True)
        kept = [ln for ln in lines if set(ln) <= vocab]
        text, dropped = "".join(kept), len(lines) - len(kept)
    text = text[args.skip: args.skip + args.chars]
    data = text.encode("utf-8")
    rows = []
    for budget in map(int, args.budgets.split(",")):
        for steps, losses in plans.items():
            if losses is not None and budget >= dcfg.seq_len:
                continue  # one token per step: the plan has nothing to choose
            t0 = time.perf_counter()
            blob, st = compress(data, loaded, budget, losses, one_pass=steps == "one-pass")
            t1 = time.perf_counter()
            assert decompress(blob, loaded) == data, "round trip failed"
            t2 = time.perf_counter()
            rows.append(row(budget, steps, blob, st, text, t1 - t0, t2 - t1))
    base = {k: 8 * v / len(text) for k, v in baselines(data).items()}
    result = {"benchmark": "compression", "git_commit": git_commit(), "args": vars(args),
              "checkpoint": str(loaded.path), "chars": len(text),
              "bytes": len(data), "data_sha256": corpus.sha256, "data": corpus.source,
              "dropped_lines": dropped, "ardm": rows,
              "baselines_bits_per_char": base}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2))
    print(f"{len(text):,} held-out characters of {corpus.source} ({loaded.config.recipe})"
          + (f"; {dropped} lines with characters outside the vocabulary dropped" if dropped else ""))
    cols = ("bits/char", "model NLL", "overhead", "enc KB/s", "dec KB/s")
    print(f"{'coder':22s} " + " ".join(f"{c:>9s}" for c in cols))
    for r in rows:
        name = f"ardm, K={r['budget']}" + ("" if r["steps"] == "equal" else f", {r['steps']}")
        print(f"{name:22s} {r['bits_per_char']:9.3f} {r['model_nll_bits_per_char']:9.3f} "
              f"{r['overhead']:+9.2%} {r['encode_kb_per_s']:9.2f} {r['decode_kb_per_s']:9.2f}")
    for name, bpc in base.items():
        print(f"{name:22s} {bpc:9.3f}")
    print("(ardm bits/char include the file header; overhead compares the payload with the model NLL)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
