"""`ardm plan`: the parallel-generation budget planner (ardm.generation.planner, SPEC §4.3)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ardm.cli.args import int_list
from ardm.errors import ArdmError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan", help="parallel-generation budget plan (order-agnostic ARDM dynamic program, SPEC §4.3)",
        description="Estimate the per-step loss components l_t of a diffusion checkpoint on held-out "
                    "windows, then choose for each budget K which steps generate how many tokens "
                    "(Hoogeboom et al.'s dynamic program) and print the predicted bits/token.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="diffusion (not causal) checkpoint folder or run directory")
    p.add_argument("--budget", required=True, help="steps K, or a comma-separated list of budgets")
    p.add_argument("--data", help="corpus (default: the checkpoint's); its validation split is used")
    p.add_argument("--windows", type=int, default=16, help="validation windows used to estimate l_t")
    p.add_argument("--repeats", type=int, default=1, help="random orders per window")
    p.add_argument("--evaluate", type=int, default=0, metavar="N",
                   help="also follow each plan on N further validation windows and report the realised "
                        "bits/token (one random order each)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random orders that estimate l_t and of those of --evaluate")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    p.add_argument("--plot", metavar="PNG", help="also plot bits/token against the budget")
    p.add_argument("--raw", action="store_true",
                   help="plan on the measured l_t as they are, not on their non-increasing fit")
    p.add_argument("--save", metavar="FILE",
                   help="write the loss components (JSON) for `ardm compress --plan` and the "
                        "`planned` sampler")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (loss components and every budget's plan)")


def run(args) -> int:
    from ardm.core.checkpoint import load
    from ardm.core.runtime import resolve_device
    from ardm.data.sources import load_corpus_like
    from ardm.data.tokens import encode, eval_blocks
    from ardm.generation.planner import (
        estimate_loss_components,
        monotone_components,
        plan_rows,
        save_loss_components,
    )

    budgets = int_list(args.budget, "--budget values")
    if min(budgets) < 1 or args.windows < 1 or args.repeats < 1:
        raise ArdmError("--budget, --windows and --repeats must be >= 1")
    loaded = load(args.checkpoint, device=str(resolve_device(args.device)))
    if loaded.config.model.causal:
        raise ArdmError("plan needs a diffusion (bidirectional) checkpoint, not a causal AR model")
    dcfg = loaded.config.data
    corpus = load_corpus_like(dcfg, args.data)
    blocks = eval_blocks(encode(loaded.tokenizer, corpus.val), dcfg.seq_len)
    windows = blocks[: args.windows]
    D = windows.shape[1]
    if max(budgets) > D:
        raise ArdmError(f"budget {max(budgets)} exceeds the {D} tokens of a sequence")
    measured = estimate_loss_components(loaded.model, windows, repeats=args.repeats, seed=args.seed)
    losses = measured if args.raw else monotone_components(measured)
    if args.save:
        save_loss_components(args.save, losses, checkpoint=str(loaded.path), sequence_length=D,
                             windows=len(windows), repeats=args.repeats, seed=args.seed,
                             data_sha256=corpus.sha256, fit="raw" if args.raw else "non-increasing",
                             measured_nats=[float(v) for v in measured])
    rows = plan_rows(loaded.model, losses, budgets,
                     held=blocks[args.windows: args.windows + args.evaluate] if args.evaluate else None,
                     seed=args.seed)
    if args.plot:
        from ardm.evaluation.plots import plot_budget_curve

        plot_budget_curve(rows, Path(args.plot), f"{loaded.config.recipe}: budget planner")
    if args.json:
        print(json.dumps({"checkpoint": str(loaded.path), "sequence_length": D, "windows": len(windows),
                          "repeats": args.repeats, "data_sha256": corpus.sha256,
                          "fit": "raw" if args.raw else "non-increasing",
                          "loss_components_nats": [round(float(v), 5) for v in losses],
                          "measured_nats": [round(float(v), 5) for v in measured], "plans": rows},
                         indent=2))
        return 0
    print(f"{loaded.config.recipe}: l_t from {len(windows)} validation windows x {args.repeats} orders "
          f"(l_0 = {losses[0]:.3f}, l_{D - 1} = {losses[-1]:.3f} nats)")
    for r in rows:
        sizes = [n for n in r["step_sizes"] if n]
        shown = ", ".join(map(str, sizes[:12])) + (", ..." if len(sizes) > 12 else "")
        real = (f"; realised {r['realised_bits_per_token']:.3f} ± {r['realised_bits_per_token_se']:.3f} "
                f"on {r['evaluated_windows']} other windows" if "realised_bits_per_token" in r else "")
        print(f"K = {r['budget']:4d}: predicted {r['predicted_bits_per_token']:.3f} bits/token{real}; "
              f"tokens per step: {shown}")
    return 0
