"""`ardm demo`: the offline demo on the bundled checkpoints (ardm.evaluation.demo.run_demo)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the offline demo: samplers compared on the bundled checkpoints",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="report folder")
    p.add_argument("--num", type=int, default=32, help="samples per sampler and budget")
    p.add_argument("--nfe", default="16,32,64", help="comma-separated NFE budgets")
    p.add_argument("--tokens", type=int, default=64,
                   help="characters generated per sample (l2r runs only at the budget equal to it)")
    p.add_argument("--checkpoints", default=None,
                   help="folder holding the bundled checkpoints (default: checkpoints/ of the repository)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ardm.cli.args import int_list
    from ardm.evaluation.demo import run_demo

    kwargs = {"checkpoints": Path(args.checkpoints)} if args.checkpoints else {}
    return run_demo(Path(args.out), num=args.num, nfe=int_list(args.nfe), tokens=args.tokens,
                    progress=not args.no_progress, **kwargs)
