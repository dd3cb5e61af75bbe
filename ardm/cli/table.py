"""`ardm table`: markdown tables of result files (ardm.evaluation.tables.table; a Sudoku bench's
results.json: ardm.tasks.sudoku.report.bench_tables; `--frontier`: several compare sweeps read as one
frontier, ardm.evaluation.sweeps.merge_sweeps)."""

from __future__ import annotations

from ardm.errors import ArdmError


def add_parser(sub) -> None:
    p = sub.add_parser("table", help="markdown table of result files (eval JSONs, a compare or a Sudoku "
                                     "bench results.json)")
    p.add_argument("files", nargs="+",
                   help="`ardm eval --json` files, or a compare/demo or `ardm sudoku bench` results.json")
    p.add_argument("--frontier", action="store_true",
                   help="read two or more swept compare results.json files (same models, data and seeds) "
                        "as one frontier: each sampler's points from every file on one curve")
    p.add_argument("--pool", action="store_true",
                   help="with --frontier: the files are replications on disjoint seeds; pool each point's "
                        "samples into one larger sample (points missing from a file are dropped; held-out "
                        "statistics from the first file)")


def run(args) -> int:
    from ardm.evaluation.tables import read_result, table
    from ardm.tasks.sudoku.report import BENCH_FORMAT, bench_tables

    docs = [read_result(p) for p in args.files]
    if args.pool and not args.frontier:
        raise ArdmError("--pool pools sweeps read as one frontier: use it with --frontier")
    if args.frontier:
        from ardm.evaluation.frontier import frontier_lines
        from ardm.evaluation.judge import judge_frontier_lines
        from ardm.evaluation.sweeps import merge_sweeps

        merged = merge_sweeps(docs, list(args.files), pool=args.pool)
        if args.pool:
            p = merged["pooled"]
            dropped = f"; dropped (not in every file): {', '.join(p['dropped'])}" if p["dropped"] else ""
            print(f"Pooled {len(p['files'])} replications ({len(merged['seeds'])} seeds); held-out "
                  f"statistics from {p['held_out_from']}{dropped}.\n")
        print("\n".join(frontier_lines(merged) + (judge_frontier_lines(merged) if "judge" in merged else [])))
        return 0
    benches = [d for d in docs if d.get("format") == BENCH_FORMAT]
    if benches and len(benches) != len(docs):
        raise ArdmError("give either Sudoku bench results.json files or other result files, not both")
    print("\n\n".join("\n".join(bench_tables(d)) for d in benches) if benches else table(args.files, docs))
    return 0
