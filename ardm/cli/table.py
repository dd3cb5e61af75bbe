"""`ardm table`: markdown tables of result files (ardm.evaluation.tables.table; a Sudoku bench's
results.json: ardm.tasks.sudoku.report.bench_tables)."""

from __future__ import annotations

from ardm.errors import ArdmError


def add_parser(sub) -> None:
    p = sub.add_parser("table", help="markdown table of result files (eval JSONs, a compare or a Sudoku "
                                     "bench results.json)")
    p.add_argument("files", nargs="+",
                   help="`ardm eval --json` files, or a compare/demo or `ardm sudoku bench` results.json")


def run(args) -> int:
    from ardm.evaluation.tables import read_result, table
    from ardm.tasks.sudoku.report import BENCH_FORMAT, bench_tables

    docs = [read_result(p) for p in args.files]
    benches = [d for d in docs if d.get("format") == BENCH_FORMAT]
    if benches and len(benches) != len(docs):
        raise ArdmError("give either Sudoku bench results.json files or other result files, not both")
    print("\n\n".join("\n".join(bench_tables(d)) for d in benches) if benches else table(args.files, docs))
    return 0
