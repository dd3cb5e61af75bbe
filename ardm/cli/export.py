"""`ardm export`: a run's latest checkpoint as a plain (optionally fp16) folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ardm.errors import ArdmError


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's latest checkpoint as a plain (optionally fp16) folder",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint folder, or run directory (its latest checkpoint)")
    p.add_argument("--out", required=True,
                   help="checkpoint folder to write (without the training state; replaced atomically)")
    p.add_argument("--fp16", action="store_true", help="store weights in float16 (half the size)")
    p.add_argument("--metrics", metavar="FILE",
                   help="an `ardm eval --json` result, recorded in the export's meta as validation metrics")


def run(args) -> int:
    import torch

    from ardm.core.checkpoint import load_tokenizer, read_checkpoint, read_weights, write_checkpoint

    ckpt = read_checkpoint(args.checkpoint)
    weights = read_weights(ckpt)
    meta = {**ckpt.meta, "exported_from": str(ckpt.path), "dtype": "float16" if args.fp16 else "float32"}
    if args.metrics:
        try:
            meta["validation"] = json.loads(Path(args.metrics).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ArdmError(f"--metrics {args.metrics}: not a readable JSON file ({e})") from None
    write_checkpoint(Path(args.out), ckpt.config, weights, load_tokenizer(ckpt), meta,
                     dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"exported {ckpt.path} -> {args.out}")
    return 0
