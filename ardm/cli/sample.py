"""`ardm sample`: generate with any sampler (ardm.generation.loop.generate)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap

from ardm.errors import ArdmError


class _DefaultsAndRawEpilog(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def add_parser(sub) -> None:
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
    p.add_argument("--sampler", required=True,
                   help="sampler name, or a spec as `ardm compare` takes it (gate-linear, gate:reveal=joint)")
    p.add_argument("--steps", type=int, required=True, help="sampler steps K (the NFE budget)")
    p.add_argument("--num", type=int, default=1, help="number of samples")
    p.add_argument("--length", type=int,
                   help="tokens per sample, prompt included (unset: the training length)")
    p.add_argument("--prompt", default="", help="text every sample starts with (never rewritten)")
    p.add_argument("--seed", type=int, default=0,
                   help="sample i uses seed SEED + i (with --mbr K, its candidates SEED + iK .. "
                        "SEED + iK + K - 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: keep the smallest set of likeliest tokens whose probability "
                        "reaches P (1 = off)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option (repeatable; the list is below)")
    p.add_argument("--batch-size", type=int, default=16, help="samples per denoiser pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (samples, NFE, overwrites, wall time)")
    p.add_argument("--trace", metavar="FILE", help="write a JSON trace of every step's writes and overwrites "
                                                   "(`ardm view FILE` shows it)")
    p.add_argument("--html", metavar="FILE",
                   help="write a web page replaying the first sample (docs/viewer.md)")
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
    p.add_argument("--block-size", type=int, default=0, metavar="W",
                   help="semi-autoregressive blocks of W positions (W divides --length; steps a multiple "
                        "of the number of blocks); the sampler runs inside the current block. 0: one "
                        "block; a block_causal model always uses its own blocks")
    p.add_argument("--cache", choices=("none", "exact", "prefix", "dual"), default="none",
                   help="exact: a block_causal model computes settled blocks once (KV cache, SPEC §11.6), an "
                        "armd model each written token once (strided: S queries a step); "
                        "prefix / dual: Fast-dLLM's approximate cache of a bidirectional model (with "
                        "--block-size and --approximate)")
    p.add_argument("--approximate", action="store_true",
                   help="accept an approximate cache (prefix, dual): its logits drift from the full pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """A thin wrapper over `ardm.load(DIR).generate(...)` (ardm.generation.pipeline)."""
    from ardm.cli.args import check_out_folders, save_trace
    from ardm.core.runtime import resolve_device
    from ardm.generation.pipeline import check_counts, load
    from ardm.generation.registry import SAMPLERS, parse_options
    from ardm.generation.specs import one_run_sampler

    check_out_folders(args, "trace", "html")
    name, spec_options, spec_gate = one_run_sampler(args.sampler)  # gate-linear, gate:reveal=joint, ...
    explicit = {**spec_options, **parse_options(name, args.set)}
    gate = args.gate or spec_gate
    if name != "gate" and gate:
        raise ArdmError("--gate applies to --sampler gate only")
    SAMPLERS[name].Options(**explicit)  # bad options fail before the checkpoint is read
    check_counts(as_flags=True, num=args.num, steps=args.steps, batch_size=args.batch_size, mbr=args.mbr)
    loaded = load(args.checkpoint, device=str(resolve_device(args.device)))
    out = loaded.generate(args.prompt, sampler=name, steps=args.steps, num=args.num,
                          length=args.length, seed=args.seed, temperature=args.temperature, top_k=args.top_k,
                          top_p=args.top_p, mbr=args.mbr, batch_size=args.batch_size, gate_path=gate,
                          block_size=args.block_size, cache=args.cache, approximate=args.approximate,
                          progress=not (args.json or args.no_progress or args.show),
                          trace=bool(args.trace or args.html or args.show), **explicit)
    if out.note:
        print(out.note, file=sys.stderr)
    if args.show:
        from ardm.cli.show import animate

        animate(out.traces[0], loaded.tokenizer, loaded.tokenizer.encode(args.prompt))
    traces = out.traces if args.trace else out.traces[:1]
    if args.trace or args.html:
        from ardm.generation.trace import trace_document

        save_trace(args, trace_document(traces, loaded.tokenizer, checkpoint=str(loaded.path),
                                        prompt=args.prompt, seed=args.seed, temperature=args.temperature))
    if args.json:
        print(json.dumps({"checkpoint": str(loaded.path), "sampler": out.sampler, "options": out.options,
                          "steps": args.steps, "block_size": args.block_size, "cache": args.cache,
                          "length": out.length, "prompt": args.prompt, "seed": args.seed,
                          "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
                          "samples": out.samples, "wall_time_s": out.wall_time_s}, indent=2))
    else:
        for smp in out.samples:
            print(smp["text"])
            print(f"--- seed {smp['seed']}: NFE {smp['nfe']}, overwrites {smp['overwrites']['effective']} "
                  f"effective / {smp['overwrites']['selected']} selected")
    return 0
