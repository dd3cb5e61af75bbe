"""The `ardm` command line. Every user-fixable problem ends as one line `ardm: error: ...`, exit 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import textwrap
from pathlib import Path

from ardm.errors import ArdmError

EPILOG = "Run `ardm COMMAND --help` for the options of one command."


def _add_train(sub) -> None:
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
                        "tokenizer; optimizer, LR schedule and step count start afresh)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (train.device)")
    p.add_argument("--batch-size", type=int, help="sequences per step per process (train.batch_size)")
    p.add_argument("--lr", type=float, help="peak learning rate (train.lr)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set model.d_model=256 (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval", help="likelihood of text: ELBO bits/char for diffusion models, exact NLL for AR",
        description="Bits per token and per character (and the perplexity bound) of a corpus split "
                    "under a checkpoint. Diffusion models: MDLM absorbing NELBO with a Monte-Carlo "
                    "standard error; causal models: exact NLL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or run directory")
    p.add_argument("--data", help="corpus (default: the one the checkpoint was trained on)")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="which split of the corpus (the same deterministic split as training)")
    p.add_argument("--draws", type=int, default=8,
                   help="Monte-Carlo draws of t per window (nelbo) or random orders per window (exact-order)")
    p.add_argument("--estimator", choices=("nelbo", "exact-order"), default="nelbo",
                   help="diffusion models: the MDLM NELBO bound, or the exact NLL of random generation "
                        "orders (SPEC §4.2(i); sequence-length passes per order: use --max-windows)")
    p.add_argument("--max-windows", type=int, default=0, help="score only the first N windows (0: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")


class _DefaultsAndRawEpilog(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _add_sample(sub) -> None:
    from ardm.generation.registry import SAMPLERS

    options = "\n".join(textwrap.fill(', '.join(f.name for f in dataclasses.fields(cls.Options)) or '-',
                                      width=88, initial_indent=f"  {name:8s}", subsequent_indent=" " * 10)
                        for name, cls in SAMPLERS.items())
    p = sub.add_parser(
        "sample", help="generate text from a checkpoint with any sampler",
        description="Generate --num samples of --length tokens (prompt included) with a named sampler "
                    f"({', '.join(SAMPLERS)}) in --steps steps. Sample i uses seed S + i, so results do "
                    "not depend on --batch-size. l2r and ar need steps = length - prompt length; "
                    "llada needs steps <= that length (and a multiple of its blocks); the others take any "
                    "steps >= 1. Sampler options: --set KEY=VALUE (e.g. --set strategy=loop for remdm).",
        epilog=f"sampler options (see ardm/samplers/ for their meaning and defaults):\n{options}",
        formatter_class=_DefaultsAndRawEpilog)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or run directory")
    p.add_argument("--sampler", required=True, help="sampler name")
    p.add_argument("--steps", type=int, required=True, help="sampler steps K (the NFE budget)")
    p.add_argument("--num", type=int, default=1, help="number of samples")
    p.add_argument("--length", type=int,
                   help="tokens per sample, prompt included (unset: the training length)")
    p.add_argument("--prompt", default="", help="text every sample starts with (never rewritten)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option (repeatable; the list is below)")
    p.add_argument("--batch-size", type=int, default=16, help="samples per denoiser pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (samples, NFE, overwrites, wall time)")
    p.add_argument("--trace", metavar="FILE", help="write a JSON trace of every step's writes and overwrites")
    p.add_argument("--mbr", type=int, default=1, metavar="K",
                   help="MBR decoding (SPEC §6.9): draw K candidates per sample and keep the one with the "
                        "highest mean BLEU against the others; NFE multiplies by K")
    p.add_argument("--show", action="store_true",
                   help="animate the refinement of the first sample in the terminal: masked positions "
                        "dim, newly written tokens green, overwritten tokens highlighted red")
    p.add_argument("--gate", metavar="DIR",
                   help="--sampler gate: a gate folder from `ardm train-gate` (default: the checkpoint's "
                        "gate/ folder if any, else the linear default gate; --set gate=linear|learned|none "
                        "chooses explicitly)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_train_gate(sub) -> None:
    p = sub.add_parser(
        "train-gate", help="train the overwrite gate of a frozen diffusion denoiser",
        description="Train a Dynamic Overwrite Gate (SPEC §7) for a frozen bidirectional denoiser on "
                    "teacher-anchored drafts of its training corpus. The gate (gate.safetensors + "
                    "gate.json + metrics.jsonl) goes to --out, by default the gate/ folder inside the "
                    "checkpoint folder, where `ardm sample --sampler gate` finds it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or run directory (bidirectional)")
    p.add_argument("--data", help="corpus (default: the one the checkpoint was trained on)")
    p.add_argument("--out", help="gate folder (default: CHECKPOINT/gate)")
    p.add_argument("--kind", default="mlp", help="mlp (learned) or linear")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=32, help="drafts per step")
    p.add_argument("--lr", type=float, default=0.0, help="AdamW learning rate (0: 1e-3 linear, 3e-4 mlp)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler-steps", type=int, default=64,
                   help="K of the drafts' gate sampler (use the --steps you will sample with)")
    p.add_argument("--rollout", type=int, default=4, help="J: drafts run 1..J gate-sampler steps")
    p.add_argument("--lambda-aux", type=float, default=1.0)
    p.add_argument("--lambda-step", type=float, default=1.0)
    p.add_argument("--lambda-sparse", type=float, default=0.05)
    p.add_argument("--lambda-tv", type=float, default=0.05)
    p.add_argument("--mask", default="relaxed",
                   help="mask in the sparsity term: relaxed (Gumbel-sigmoid), straight_through or expected")
    p.add_argument("--eval-interval", type=int, default=50, help="validation every N steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="gate sampler option of the drafts, stored as the gate's default "
                        "(prior, alpha, delta, combine, mask, theta, fill, mode, y_tilde)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_misc(sub) -> None:
    sub.add_parser("recipes", help="list the training recipes")
    p = sub.add_parser("export", help="export a run's latest checkpoint as a plain (optionally fp16) folder",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fp16", action="store_true", help="store weights in float16 (half the size)")
    p.add_argument("--metrics", metavar="FILE",
                   help="an `ardm eval --json` result, recorded in the export's meta as validation metrics")
    p = sub.add_parser(
        "plan", help="parallel-generation budget plan (order-agnostic ARDM dynamic program, SPEC §4.3)",
        description="Estimate the per-step loss components l_t of a diffusion checkpoint on held-out "
                    "windows, then choose for each budget K which steps generate how many tokens "
                    "(Hoogeboom et al.'s dynamic program) and print the predicted bits/token.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--budget", required=True, help="steps K, or a comma-separated list of budgets")
    p.add_argument("--data", help="corpus (default: the checkpoint's); its validation split is used")
    p.add_argument("--windows", type=int, default=16, help="validation windows used to estimate l_t")
    p.add_argument("--repeats", type=int, default=1, help="random orders per window")
    p.add_argument("--evaluate", type=int, default=0, metavar="N",
                   help="also follow each plan on N further validation windows and report the realised "
                        "bits/token (one random order each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--plot", metavar="PNG", help="also plot bits/token against the budget")
    p.add_argument("--raw", action="store_true",
                   help="plan on the measured l_t as they are, not on their non-increasing fit")
    p.add_argument("--save", metavar="FILE",
                   help="write the loss components (JSON) for `ardm compress --plan` and the "
                        "`planned` sampler")
    p.add_argument("--json", action="store_true")
    for name, what in (("compress", "compress UTF-8 text losslessly with a diffusion checkpoint and rANS"),
                       ("decompress", "restore a file written by `ardm compress` (same checkpoint)")):
        p = sub.add_parser(name, help=what, description=what + " (SPEC §4.5).",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("input")
        p.add_argument("output")
        p.add_argument("--checkpoint", required=True)
        if name == "compress":
            p.add_argument("--budget", type=int, default=0,
                           help="parallel steps per block (0: one token per step, the best ratio)")
            p.add_argument("--plan", metavar="FILE",
                           help="loss components from `ardm plan --save` on this checkpoint: the budget's "
                                "steps follow the planner's dynamic program instead of equal sizes "
                                "(stored in the file's header)")
    p = sub.add_parser("table", help="markdown table of result files (eval JSONs or a compare results.json)")
    p.add_argument("files", nargs="+", help="`ardm eval --json` files, or a compare/demo results.json")
    p = sub.add_parser("demo", help="the offline demo: samplers compared on the bundled checkpoints",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="report folder (default: runs/demo)")
    p.add_argument("--num", type=int, default=32, help="samples per sampler and budget")
    p.add_argument("--nfe", default="16,32,64", help="comma-separated NFE budgets")
    p.add_argument("--tokens", type=int, default=64,
                   help="characters generated per sample (l2r runs only at the budget equal to it)")
    p.add_argument("--checkpoints", default=None,
                   help="folder holding the bundled checkpoints (default: checkpoints/ of the repository)")
    p.add_argument("--no-progress", action="store_true")


def _add_compare(sub) -> None:
    from ardm.cli.compare import add_compare_parsers
    from ardm.cli.sudoku import add_sudoku_parser

    add_compare_parsers(sub)
    add_sudoku_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ardm", epilog=EPILOG,
        description="Autoregressive diffusion language models that can revise their own tokens.")
    from ardm.version import __version__

    parser.add_argument("--version", action="version", version=f"ardm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_eval(sub)
    _add_sample(sub)
    _add_train_gate(sub)
    _add_compare(sub)
    _add_misc(sub)
    return parser


def cmd_train(args) -> int:
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
    for flag, key in (("seed", "train.seed"), ("device", "train.device"),
                      ("batch_size", "train.batch_size"), ("lr", "train.lr")):
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


def cmd_eval(args) -> int:
    import torch

    from ardm.core.checkpoint import load
    from ardm.core.runtime import resolve_device
    from ardm.data.sources import load_corpus_like
    from ardm.evaluation.likelihood import evaluate_text

    if args.draws < 1:
        raise ArdmError(f"--draws must be >= 1, got {args.draws}")
    if args.batch_size < 1:
        raise ArdmError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    loaded = load(args.checkpoint, device=str(device))
    if not loaded.config.model.causal and loaded.config.noise.kind == "uniform":
        # a uniform-noise denoiser never sees MASK, so the absorbing NELBO says nothing about it;
        # its own chain's discrete-time ELBO (SPEC §2.5, L_T) is not implemented yet
        raise ArdmError("eval scores diffusion models with the absorbing NELBO, which is meaningless "
                        "for a uniform-noise model (its own-chain ELBO, SPEC §2.5, is not implemented)")
    dcfg = loaded.config.data
    corpus = load_corpus_like(dcfg, args.data)
    text = {"val": corpus.val, "train": corpus.train, "all": corpus.train + corpus.val}[args.split]
    torch.manual_seed(args.seed)
    report = evaluate_text(loaded.model, loaded.tokenizer, text, dcfg.seq_len, draws=args.draws,
                           batch_size=args.batch_size, seed=args.seed, device=str(device),
                           progress=not args.json, estimator=args.estimator.replace("-", "_"),
                           max_windows=args.max_windows, record_len=dcfg.record_len)
    result = {"checkpoint": str(loaded.path), "recipe": loaded.config.recipe, "data": corpus.source,
              "split": args.split, "data_sha256": corpus.sha256, **report.to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        se = f" ± {report.bits_per_char_se:.4f}" if report.bits_per_char_se else ""
        print(f"{loaded.config.recipe} on {corpus.source} [{args.split}]: {report.estimator}\n"
              f"  bits/char  {report.bits_per_char:.4f}{se}\n"
              f"  bits/token {report.bits_per_token:.4f}\n"
              f"  perplexity {'bound ' if report.draws > 1 or 'NELBO' in report.estimator else ''}"
              f"{report.perplexity_bound:.3f} (per token)\n"
              f"  {report.tokens} tokens, {report.chars} chars, {report.windows} windows of {report.seq_len}")
    return 0


def cmd_sample(args) -> int:
    import time

    import torch

    from ardm.core.checkpoint import atomic_write_text, load
    from ardm.core.runtime import resolve_device
    from ardm.generation.gate.store import gate_sampler
    from ardm.generation.loop import generate
    from ardm.generation.registry import SAMPLERS, make_sampler, parse_options

    explicit = parse_options(args.sampler, args.set)
    if args.sampler != "gate":
        if args.gate:
            raise ArdmError("--gate applies to --sampler gate only")
        sampler = make_sampler(args.sampler, **explicit)
    else:
        SAMPLERS["gate"].Options(**explicit)  # bad options fail before the checkpoint is read
    for flag in ("num", "steps", "batch_size", "mbr"):
        if getattr(args, flag) < 1:
            raise ArdmError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    device = resolve_device(args.device)
    loaded = load(args.checkpoint, device=str(device))
    model, tok = loaded.model, loaded.tokenizer
    if args.sampler == "gate":
        sampler, note = gate_sampler(loaded.path, explicit, args.gate, device)
        if note:
            print(note, file=sys.stderr)
    sampler.check_model(model.cfg.attention, loaded.config.noise.kind)
    length = args.length if args.length is not None else min(loaded.config.data.seq_len, model.cfg.max_len)
    prompt = torch.tensor(tok.encode(args.prompt), dtype=torch.long)
    start, samples, traces = time.perf_counter(), [], []
    total = args.num * args.mbr  # with MBR, sample i's candidates use seeds S + i K .. S + i K + K - 1
    for first in range(0, total, args.batch_size):
        batch = min(args.batch_size, total - first)
        g = generate(model, sampler, length=length, steps=args.steps, batch=batch, prompt=prompt,
                     seed=args.seed + first, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                     progress=not (args.json or args.no_progress or args.show),
                     trace=bool(args.trace or args.show))
        if args.show and first == 0:
            from ardm.cli.show import animate

            animate(g.trace, tok, prompt.tolist())
        for b, row in enumerate(g.tokens.tolist()):
            overwrites = {"selected": g.overwrites_selected[b], "effective": g.overwrites_effective[b]}
            samples.append({"seed": args.seed + first + b, "text": tok.decode(row),
                            "nfe": g.nfe_per_sample[b], "writes": g.writes[b], "overwrites": overwrites,
                            "remasks": g.remasks[b]})
        if args.trace:
            traces.append({"first_sample": first, **g.trace})
    if args.mbr > 1:
        samples = _mbr_choose(samples, args.mbr)
    wall = time.perf_counter() - start
    if args.trace:
        atomic_write_text(Path(args.trace), json.dumps({"checkpoint": str(loaded.path), "chunks": traces}))
    if args.json:
        print(json.dumps({"checkpoint": str(loaded.path), "sampler": sampler.name,
                          "options": dataclasses.asdict(sampler.options), "steps": args.steps,
                          "length": length, "prompt": args.prompt, "seed": args.seed,
                          "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
                          "samples": samples, "wall_time_s": round(wall, 4)}, indent=2))
    else:
        for smp in samples:
            print(smp["text"])
            print(f"--- seed {smp['seed']}: NFE {smp['nfe']}, overwrites {smp['overwrites']['effective']} "
                  f"effective / {smp['overwrites']['selected']} selected")
    return 0


def _mbr_choose(candidates: list[dict], k: int) -> list[dict]:
    """Groups of k consecutive candidates -> the MBR choice of each, with the group's total cost."""
    from ardm.generation.mbr import mbr_select

    out = []
    for i in range(0, len(candidates), k):
        group = candidates[i:i + k]
        best = dict(group[mbr_select([c["text"] for c in group])])
        best["mbr"] = {"k": k, "candidate_seeds": [c["seed"] for c in group], "chosen_seed": best["seed"]}
        best["nfe"] = sum(c["nfe"] for c in group)  # SPEC §6.10: MBR multiplies NFE by k
        out.append(best)
    return out


def cmd_train_gate(args) -> int:
    from ardm.generation.gate.training import GateTrainConfig, train_gate
    from ardm.generation.registry import parse_options

    cfg = GateTrainConfig(kind=args.kind, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, sampler_steps=args.sampler_steps, rollout=args.rollout,
                          lambda_aux=args.lambda_aux,
                          lambda_step=args.lambda_step, lambda_sparse=args.lambda_sparse,
                          lambda_tv=args.lambda_tv, mask=args.mask, eval_interval=args.eval_interval,
                          sampler=parse_options("gate", args.set))
    result = train_gate(args.checkpoint, cfg, out=args.out, data=args.data, device=args.device,
                        progress=not args.no_progress)
    keys = ("L_aux", "L_step", "mean_p", "overwrite_rate", "precision", "recall")
    for when in ("initial", "final"):
        print(f"{when:8s} " + "  ".join(f"{k} {result[when][k]:.4f}" for k in keys))
    print(f"gate ({result['kind']}, {result['steps']} steps, {result['elapsed_s']:.1f} s): {result['out']}")
    return 0


def cmd_recipes(args) -> int:
    from ardm.training.recipes import RECIPES

    for name, fn in RECIPES.items():
        print(f"{name:22s} {fn.__doc__.strip().splitlines()[0]}")
    return 0


def cmd_export(args) -> int:
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


def cmd_plan(args) -> int:
    from ardm.core.checkpoint import load
    from ardm.core.runtime import resolve_device
    from ardm.data.sources import load_corpus_like
    from ardm.data.tokens import encode, eval_blocks
    from ardm.generation.planner import (
        estimate_loss_components,
        monotone_components,
        plan_budget,
        planned_nll,
        save_loss_components,
    )

    try:
        budgets = [int(b) for b in args.budget.split(",")]
    except ValueError:
        raise ArdmError(f"--budget must be an integer or a comma-separated list, "
                        f"got {args.budget!r}") from None
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
    plans = [plan_budget(losses, k) for k in budgets]
    rows = [{"budget": p.budget, "predicted_bits_per_token": p.bits_per_token(),
             "expected_nll_nats": p.expected_nll, "step_sizes": p.step_sizes} for p in plans]
    if args.evaluate:  # follow each plan on other windows: the realised bits/token (SPEC §4.3)
        held = blocks[args.windows: args.windows + args.evaluate]
        if len(held) == 0:
            raise ArdmError("no validation windows left after --windows to evaluate the plans on")
        for p, r in zip(plans, rows, strict=True):
            nll = planned_nll(loaded.model, held, p.boundaries, seed=args.seed)
            r["realised_bits_per_token"] = float(nll.mean()) / D / math.log(2)
            r["realised_bits_per_token_se"] = float(nll.std() / math.sqrt(len(nll))) / D / math.log(2)
            r["evaluated_windows"] = len(held)
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


def cmd_compress(args) -> int:
    from ardm.core.checkpoint import atomic_write_bytes, load
    from ardm.tasks.compression import compress, decompress

    src = Path(args.input)
    if not src.is_file():
        raise ArdmError(f"input not found: {src}")
    loaded = load(args.checkpoint)
    if args.command == "compress":
        if args.budget < 0:
            raise ArdmError(f"--budget must be >= 0, got {args.budget}")
        losses = None
        if args.plan:
            from ardm.generation.planner import load_loss_components

            losses = load_loss_components(args.plan)
        blob, st = compress(src.read_bytes(), loaded, args.budget, losses)
        atomic_write_bytes(Path(args.output), blob)
        print(f"{st.bytes_in} bytes -> {len(blob)} bytes ({st.bits_per_char:.3f} bits/char payload; "
              f"model NLL {st.model_nll_bits / max(st.chars, 1):.3f} bits/char; overhead {st.overhead:+.2%})")
    else:
        atomic_write_bytes(Path(args.output), decompress(src.read_bytes(), loaded))
        print(f"restored {args.output}")
    return 0


def cmd_table(args) -> int:
    from ardm.evaluation.tables import table

    print(table(args.files))
    return 0


def cmd_compare(args) -> int:
    from ardm.cli.compare import cmd_compare as run

    return run(args)


def cmd_sudoku(args) -> int:
    from ardm.cli.sudoku import cmd_sudoku as run

    return run(args)


def cmd_demo(args) -> int:
    from ardm.cli.compare import parse_budgets
    from ardm.evaluation.demo import run_demo

    kwargs = {"checkpoints": Path(args.checkpoints)} if args.checkpoints else {}
    return run_demo(Path(args.out), num=args.num, nfe=parse_budgets(args.nfe), tokens=args.tokens,
                    progress=not args.no_progress, **kwargs)


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample, "train-gate": cmd_train_gate,
            "recipes": cmd_recipes,
            "export": cmd_export, "table": cmd_table, "plan": cmd_plan, "compress": cmd_compress,
            "decompress": cmd_compress, "demo": cmd_demo, "compare": cmd_compare, "ablate": cmd_compare,
            "sudoku": cmd_sudoku}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except ArdmError as e:
        print(f"ardm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ardm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
