"""`ardm eval`: likelihood of a corpus split (ardm.evaluation.likelihood.evaluate_text)."""

from __future__ import annotations

import argparse
import json

from ardm.errors import ArdmError


def add_parser(sub) -> None:
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
    p.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the Monte-Carlo draws of t (nelbo) or of the random orders (exact-order); "
                        "causal models are scored exactly and draw nothing")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
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
