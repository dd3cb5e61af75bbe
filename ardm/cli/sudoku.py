"""`ardm sudoku generate | solve | bench | diagnose`: argument parsing; the work is in ardm.tasks.sudoku."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ardm.errors import ArdmError

SOLVE_HELP = "solve puzzles from a file with a trained denoiser (or an AR twin with --sampler ar)"
DIAGNOSE_HELP = ("where a greedy llada pass commits its first wrong digit, how confident it was, and whether "
                 "'undo the least confident commit' or 'undo the earliest commit below tau' would find it")


def add_parser(sub) -> None:
    p = sub.add_parser("sudoku", help="Sudoku: generate puzzles, solve them with a model, benchmark samplers",
                       description="A verifiable test of revision: puzzles with unique solutions, solved by "
                                   "any sampler through the one generation loop (givens are fixed cells).")
    ss = p.add_subparsers(dest="sudoku_command", metavar="SUBCOMMAND", required=True)
    g = ss.add_parser("generate", help="write puzzles with unique solutions (puzzle,solution CSV)")
    g.add_argument("--num", type=int, default=100, help="number of puzzles")
    g.add_argument("--givens", default="36-45", help="number of givens, N or LO-HI (17..80)")
    g.add_argument("--seed", type=int, default=0,
                   help="puzzle j comes from a seed hashed from (SEED, j): the same seed writes the same "
                        "file")
    g.add_argument("--out", required=True, help="CSV file to write (puzzle,solution lines under a header)")
    s = ss.add_parser("solve", help=SOLVE_HELP, description=SOLVE_HELP + ". Bad lines are reported with "
                      "their line number; the rest are still solved.")
    s.add_argument("--checkpoint", required=True,
                   help="the Sudoku denoiser (recipe sudoku), or its AR twin with --sampler ar")
    s.add_argument("--puzzles", required=True,
                   help="81-character lines ('0' or '.' blank) or puzzle,solution CSV")
    s.add_argument("--sampler", default="gate", help="sampler spec, e.g. gate, mdlm, remdm:strategy=loop")
    s.add_argument("--nfe", type=int, default=81, help="step budget K")
    s.add_argument("--seed", type=int, default=0, help="the i-th valid puzzle of the file uses seed SEED + i")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature of the digits (0 = argmax)")
    s.add_argument("--batch-size", type=int, default=50, help="puzzles solved together in one batch")
    s.add_argument("--json", action="store_true", help="one JSON object with every attempt")
    s.add_argument("--trace", metavar="FILE",
                   help="write a JSON trace of every step (`ardm view FILE` shows it)")
    s.add_argument("--html", metavar="FILE", help="write a web page replaying the first puzzle's solve "
                                                  "(docs/viewer.md)")
    b = ss.add_parser("bench", help="solve rate vs NFE for every sampler on easy / medium / hard sets")
    b.add_argument("--checkpoint", required=True, help="the diffusion denoiser (recipe sudoku)")
    b.add_argument("--ar", help="the AR twin (recipe sudoku-ar), run with the `ar` sampler")
    b.add_argument("--samplers", default=None,
                   help="comma-separated sampler specs (default: l2r,mdlm,llada,remdm,acs,edit,gate,"
                        "gate:fill=schedule)")
    b.add_argument("--nfe", default="81,162", help="comma-separated NFE budgets")
    b.add_argument("--sets", default="easy,hard", help="comma-separated: easy, medium, hard")
    b.add_argument("--num", type=int, default=100, help="puzzles per set")
    b.add_argument("--seed", type=int, default=0,
                   help="seeds the generated puzzle sets (each set its own) and the solves (puzzle i of a "
                        "set: SEED + i)")
    b.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature of the digits, for every sampler (0 = argmax)")
    b.add_argument("--batch-size", type=int, default=50, help="puzzles solved together in one batch")
    b.add_argument("--out", required=True,
                   help="folder for results.json, summary.md, solve_rate.png and the puzzle sets "
                        "(puzzles-SET.csv)")
    b.add_argument("--puzzles-dir", metavar="DIR",
                   help="reuse the puzzle sets DIR/puzzles-SET.csv (generated and saved there if absent), "
                        "so several benches score the same puzzles without regenerating them")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    d = ss.add_parser("diagnose", help=DIAGNOSE_HELP,
                      description=DIAGNOSE_HELP + " (docs/results-sudoku.md).")
    d.add_argument("--checkpoint", required=True, help="the Sudoku denoiser (recipe sudoku)")
    d.add_argument("--puzzles", required=True,
                   help="81-character lines ('0' or '.' blank) or puzzle,solution CSV "
                        "(`ardm sudoku generate`)")
    d.add_argument("--nfe", type=int, default=81, help="step budget K of the llada pass")
    d.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0 = argmax)")
    d.add_argument("--seed", type=int, default=0, help="puzzle i uses seed SEED + i")
    d.add_argument("--batch-size", type=int, default=50, help="puzzles solved together in one batch")
    d.add_argument("--json", action="store_true", help="print one JSON object")


def _givens(text: str) -> int | tuple[int, int]:
    try:
        lo, _, hi = text.partition("-")
        return (int(lo), int(hi)) if hi else int(lo)
    except ValueError:
        raise ArdmError(f"--givens must be N or LO-HI, got {text!r}") from None


def run(args) -> int:
    from ardm.data.sudoku_puzzles import make_puzzles, write_puzzles

    if args.sudoku_command == "generate":
        if args.num < 1:
            raise ArdmError(f"--num must be >= 1, got {args.num}")
        pairs = make_puzzles(args.num, _givens(args.givens), args.seed)
        write_puzzles(args.out, pairs)
        print(f"wrote {len(pairs)} puzzles to {args.out}")
        return 0
    if args.sudoku_command == "bench":
        return _bench(args)
    if args.sudoku_command == "diagnose":
        return _diagnose(args)
    return _solve(args)


def _solve(args) -> int:
    from ardm.cli.args import check_out_folders, save_trace
    from ardm.core.checkpoint import load
    from ardm.generation.specs import SamplerSpec
    from ardm.generation.trace import trace_document
    from ardm.tasks.sudoku.bench import BenchConfig, attempt_all, solve_summary

    if args.nfe < 1 or args.batch_size < 1:
        raise ArdmError("--nfe and --batch-size must be >= 1")
    check_out_folders(args, "trace", "html")
    spec = SamplerSpec.parse(args.sampler)
    loaded = load(args.checkpoint)
    entries, errors, pairs = _read(args.puzzles)
    cfg = BenchConfig(checkpoint=args.checkpoint, num=len(pairs), seed=args.seed,
                      temperature=args.temperature, batch_size=args.batch_size, nfe=[args.nfe])
    traces: list[dict] = []
    records, sel = attempt_all(loaded, spec, pairs, args.nfe, cfg,
                               trace=spec.name != "ar" or bool(args.trace or args.html), traces=traces)
    if args.trace or args.html:
        save_trace(args, trace_document(traces, loaded.tokenizer, checkpoint=str(loaded.path), task="sudoku",
                                        puzzles=args.puzzles, seed=args.seed, temperature=args.temperature))
    summary = solve_summary(records)
    if args.json:
        print(json.dumps({"checkpoint": str(loaded.path), "sampler": spec.label, "nfe_budget": args.nfe,
                          **summary, "selectivity": sel, "bad_lines": [e.line for e in errors],
                          "attempts": [{"line": e.line, **r} for e, r in zip(entries, records, strict=True)]},
                         indent=1))
    else:
        lo, hi = summary["solve_rate_ci"]
        print(f"{spec.label} at NFE {args.nfe}: solved {summary['solved']}/{summary['puzzles']} "
              f"({100 * summary['solve_rate']:.1f}%, 95% CI {100 * lo:.1f}-{100 * hi:.1f}); "
              f"violations per grid {summary['violations_per_grid']:.2f}; "
              f"mean NFE used {summary['nfe_mean']:.1f}"
              + (f"; {len(errors)} bad line(s) skipped" if errors else ""))
    return 0


def _read(path: str) -> tuple[list, list, list]:
    """A puzzle file's entries, bad lines (reported on stderr, the rest still used) and (puzzle,
    solution) pairs, solutions computed where the file has none."""
    from ardm.data.sudoku_puzzles import read_puzzles, solve

    entries, errors = read_puzzles(path)
    for e in errors:
        print(f"{path}:{e.line}: {e.message}", file=sys.stderr)
    if not entries:
        raise ArdmError(f"no valid puzzle in {path}")
    return entries, errors, [(e.puzzle, e.solution or solve(e.puzzle, limit=1)[0]) for e in entries]


def _diagnose(args) -> int:
    from ardm.core.checkpoint import load
    from ardm.tasks.sudoku.diagnosis import diagnose, diagnosis_lines

    if args.nfe < 1 or args.batch_size < 1:
        raise ArdmError("--nfe and --batch-size must be >= 1")
    if args.temperature < 0:
        raise ArdmError(f"--temperature must be >= 0, got {args.temperature}")
    pairs = _read(args.puzzles)[2]
    loaded = load(args.checkpoint)
    d = diagnose(loaded.model, loaded.tokenizer, pairs, args.nfe, temperature=args.temperature,
                 batch_size=args.batch_size, seed=args.seed)
    doc = {"checkpoint": str(loaded.path), "puzzles_file": args.puzzles, **d}
    print(json.dumps(doc, indent=1) if args.json else "\n".join(diagnosis_lines(d)))
    return 0


def _bench(args) -> int:
    from ardm.cli.args import int_list
    from ardm.tasks.sudoku.bench import DEFAULT_SAMPLERS, BenchConfig, run_bench
    from ardm.tasks.sudoku.report import bench_table

    samplers = args.samplers or DEFAULT_SAMPLERS
    cfg = BenchConfig(checkpoint=args.checkpoint, ar_checkpoint=args.ar,
                      samplers=[s for s in samplers.split(",") if s.strip()],
                      nfe=int_list(args.nfe),
                      sets=[s.strip() for s in args.sets.split(",") if s.strip()], num=args.num,
                      seed=args.seed, temperature=args.temperature, batch_size=args.batch_size,
                      puzzles_dir=args.puzzles_dir)
    results = run_bench(cfg, Path(args.out), progress=not args.no_progress)
    print("\n".join(bench_table(results)))
    print(f"report: {Path(args.out) / 'summary.md'}")
    return 0
