"""`ardm table`: markdown tables of result files (ardm.evaluation.tables.table)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("table", help="markdown table of result files (eval JSONs or a compare results.json)")
    p.add_argument("files", nargs="+", help="`ardm eval --json` files, or a compare/demo results.json")


def run(args) -> int:
    from ardm.evaluation.tables import table

    print(table(args.files))
    return 0
