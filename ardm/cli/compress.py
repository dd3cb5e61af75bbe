"""`ardm compress` / `ardm decompress`: lossless coding with a denoiser (ardm.tasks.compression)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ardm.errors import ArdmError


def add_parser(sub) -> None:
    for name, what in (("compress", "compress UTF-8 text losslessly with a diffusion checkpoint and rANS"),
                       ("decompress", "restore a file written by `ardm compress` (same checkpoint)")):
        p = sub.add_parser(name, help=what, description=what + " (SPEC §4.5).",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        compressing = name == "compress"
        p.add_argument("input", help="UTF-8 text file to compress" if compressing
                       else "file written by `ardm compress`")
        p.add_argument("output", help="compressed file to write" if compressing
                       else "file to write the restored text to")
        p.add_argument("--checkpoint", required=True,
                       help="diffusion checkpoint folder or run directory" if compressing
                       else "the checkpoint the file was compressed with (checked against the file's header)")
        if compressing:
            p.add_argument("--budget", type=int, default=0,
                           help="parallel steps per block (0: one token per step, the best ratio)")
            p.add_argument("--plan", metavar="FILE",
                           help="loss components from `ardm plan --save` on this checkpoint: the budget's "
                                "steps follow the planner's dynamic program instead of equal sizes "
                                "(stored in the file's header)")
            p.add_argument("--one-pass", action="store_true",
                           help="armd checkpoints: encode each block from ONE forward pass (the fastest "
                                "encoder; decompression then runs K full passes). Default: K cached "
                                "steps on both sides, each about 2n/K tokens")


def run(args) -> int:
    from ardm.core.checkpoint import atomic_write_bytes, check_writable, load
    from ardm.tasks.compression import compress, decompress

    src = Path(args.input)
    if not src.is_file():
        raise ArdmError(f"input not found: {src}")
    check_writable(Path(args.output))  # before minutes of coding, not after
    loaded = load(args.checkpoint)
    if args.command == "compress":
        if args.budget < 0:
            raise ArdmError(f"--budget must be >= 0, got {args.budget}")
        losses = None
        if args.plan:
            from ardm.generation.planner import load_loss_components

            losses = load_loss_components(args.plan)
        blob, st = compress(src.read_bytes(), loaded, args.budget, losses, one_pass=args.one_pass)
        atomic_write_bytes(Path(args.output), blob)
        print(f"{st.bytes_in} bytes -> {len(blob)} bytes ({st.bits_per_char:.3f} bits/char payload; "
              f"model NLL {st.model_nll_bits / max(st.chars, 1):.3f} bits/char; overhead {st.overhead:+.2%})")
    else:
        atomic_write_bytes(Path(args.output), decompress(src.read_bytes(), loaded))
        print(f"restored {args.output}")
    return 0
