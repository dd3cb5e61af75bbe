"""`ardm view`: a trace file as a self-contained web page (ardm.evaluation.viewer.view)."""

from __future__ import annotations

from ardm.errors import ArdmError

HELP = "turn a trace (ardm sample / ardm sudoku solve --trace) into one self-contained HTML page"


def add_parser(sub) -> None:
    p = sub.add_parser("view", help=HELP,
                       description=HELP + ": tokens colored by state per step, a step slider with play / "
                                          "pause, the gate's p, per-step counts, a token's history on hover "
                                          "(docs/viewer.md). Opens offline from a file URL.")
    p.add_argument("trace", metavar="TRACE.json", help="a trace file")
    p.add_argument("--out", metavar="PAGE.html", help="the page to write (default: TRACE with .html)")
    p.add_argument("--sample", type=int, default=0, help="which sample of the trace to show (0 = the first)")


def run(args) -> int:
    from ardm.evaluation.viewer import view

    if args.sample < 0:
        raise ArdmError(f"--sample must be >= 0, got {args.sample}")
    print(f"wrote {view(args.trace, args.out, args.sample)}")
    return 0
