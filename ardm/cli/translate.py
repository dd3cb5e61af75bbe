"""`ardm translate`: source lines in, target lines out (ardm.tasks.seq2seq.decoding.translate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ardm.errors import ArdmError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "translate", help="decode target lines from source lines with a seq2seq checkpoint",
        description="Reads one source per line (--input FILE, or - for stdin) and writes one target per "
                    "line. Any sampler of the one loop on a seq2seq denoiser (fixed = AR-Diffusion with "
                    "skipping); on its AR twin --sampler ar (greedy, --steps = the target length) or "
                    "--sampler beam. --mbr K draws K candidates and keeps the MBR choice (NFE x K). "
                    "Sources longer than the model's source length are truncated and reported on stderr.")
    p.add_argument("--checkpoint", required=True, help="a seq2seq checkpoint or run directory")
    p.add_argument("--sampler", required=True,
                   help="sampler spec (fixed, mdlm, llada, remdm, edit, gate; ar or beam for an AR twin)")
    p.add_argument("--steps", type=int, required=True,
                   help="sampler steps K, the NFE budget per candidate (beam: ignored, it runs to the "
                        "target length)")
    p.add_argument("--mbr", type=int, default=1, metavar="K", help="MBR over K candidates (SPEC §6.9)")
    p.add_argument("--input", default="-", help="source file, one sentence a line (- = stdin)")
    p.add_argument("--output", help="target file (default: stdout)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax")
    p.add_argument("--seed", type=int, default=0,
                   help="candidate c of source line i (of N) uses seed SEED + c N + i")
    p.add_argument("--beam", type=int, default=4, help="beam width of --sampler beam")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a sampler option")
    p.add_argument("--batch-size", type=int, default=64,
                   help="source lines decoded together in one batch (results do not depend on it)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print one JSON object (targets, NFE, truncation)")


def _sources(name: str) -> list[str]:
    from ardm.data.parallel import check_lines

    if name == "-":
        text = sys.stdin.read()
    else:
        path = Path(name)
        if not path.is_file():
            raise ArdmError(f"--input {name}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ArdmError(f"--input {name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    lines = lines[:-1] if lines and lines[-1] == "" else lines
    if not lines:
        raise ArdmError(f"--input {name} holds no source lines")
    return check_lines(lines, name if name != "-" else "<stdin>")


def run(args) -> int:
    from ardm.core.checkpoint import atomic_write_text, load
    from ardm.core.runtime import resolve_device
    from ardm.generation.specs import SamplerSpec
    from ardm.tasks.seq2seq.decoding import build_sampler, check_mbr, translate

    check_mbr(args.mbr)
    if args.output and not Path(args.output).parent.is_dir():
        raise ArdmError(f"--output {args.output}: folder {Path(args.output).parent} does not exist")
    sources = _sources(args.input)
    loaded = load(args.checkpoint, str(resolve_device(args.device)))
    if args.sampler == "beam":
        sampler, beam = None, args.beam
    else:
        spec = SamplerSpec.parse(":".join([args.sampler, *args.set]))
        sampler, beam = build_sampler(loaded, spec, args.steps, sources, args.seed), 0
    out = translate(loaded, sources, sampler, args.steps, mbr=args.mbr, seed=args.seed,
                    temperature=args.temperature, batch_size=args.batch_size, beam=beam)
    cut = out["truncation"]
    if cut["sources"]:
        lines = ", ".join(str(i + 1) for i in cut["source_indices"])
        print(f"ardm: warning: {cut['sources']} source line(s) longer than the model's "
              f"{loaded.config.data.source_len} source tokens were truncated (lines {lines})",
              file=sys.stderr)
    text = "\n".join(out["targets"]) + "\n"
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    elif args.output:
        atomic_write_text(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0
