"""`ardm train`: train a denoiser or an AR reference from a recipe (ardm.training.loop.train)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ardm.errors import ArdmError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a denoiser or an AR reference model from a recipe",
        description="Train from a named recipe (see `ardm recipes`), optionally overriding any config "
                    "value with --set section.key=value. Checkpoints go to --out (atomically; "
                    "Ctrl-C saves and stops; --resume continues the same run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", required=True, help="recipe name, e.g. shakespeare-char")
    p.add_argument("--data", help="corpus: text file, .jsonl, folder, or hf:NAME (overrides the recipe)")
    p.add_argument("--out", help="run directory (default: runs/RECIPE)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    budget.add_argument("--max-minutes", type=float,
                        help="stop after this much wall time; the LR schedule then follows time")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init-from", metavar="CKPT",
                   help="start from this checkpoint's weights (fine-tuning: same model config and "
                        "tokenizer, except a larger model.n_layer, which grows the model with new "
                        "blocks that start as identities, and model.peer_heads; optimizer, LR "
                        "schedule and step count start afresh)")
    p.add_argument("--init-from-ar", metavar="CKPT",
                   help="start a diffusion denoiser from a causal checkpoint of the same shape "
                        "(AR-to-diffusion adaptation, SPEC §11.5; train.init_from_ar)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (train.device)")
    p.add_argument("--batch-size", type=int, help="sequences per step per process (train.batch_size)")
    p.add_argument("--lr", type=float, help="peak learning rate (train.lr)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set model.d_model=256 (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ardm.core.config import apply_overrides
    from ardm.training.loop import train
    from ardm.training.recipes import get_recipe

    cfg = get_recipe(args.recipe)
    sets = list(args.set)
    if args.data:
        sets.append(f"data.path={args.data}")
    if args.max_minutes is not None:
        if args.max_minutes <= 0:
            raise ArdmError(f"--max-minutes must be > 0, got {args.max_minutes}")
        sets += [f"train.max_minutes={args.max_minutes}", "train.max_steps=1000000000"]
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise ArdmError(f"--max-steps must be >= 1, got {args.max_steps}")
        sets += [f"train.max_steps={args.max_steps}", "train.max_minutes=0"]
    for flag, key in (("init_from_ar", "train.init_from_ar"), ("seed", "train.seed"),
                      ("device", "train.device"), ("batch_size", "train.batch_size"), ("lr", "train.lr")):
        if getattr(args, flag) is not None:
            sets.append(f"{key}={getattr(args, flag)}")
    cfg = apply_overrides(cfg, sets)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    out = Path(args.out or f"runs/{cfg.recipe}")
    result = train(cfg, out, resume=args.resume, progress=not args.no_progress, init_from=args.init_from)
    if result.get("stop_reason") == "interrupted":
        print(f"interrupted at step {result['step']}; checkpoint saved in {out} "
              f"(continue with --resume)", file=sys.stderr)
        return 130
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}
    print(f"done: {json.dumps(shown)}\ncheckpoint: {out}")
    return 0
