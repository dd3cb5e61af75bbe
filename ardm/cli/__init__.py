"""The `ardm` command line. Every user-fixable problem ends as one line `ardm: error: ...`, exit 2.

One module per command, each with `add_parser(sub)` and `run(args)`: argument parsing and printing
only; the work is a library call named in the module's docstring (README "Command line and its
Python equivalent").
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ardm.errors import ArdmError
from ardm.version import __version__

EPILOG = "Run `ardm COMMAND --help` for the options of one command."
# command -> module of ardm.cli, in the order `ardm --help` lists them
COMMANDS = {"train": "train", "eval": "evaluate", "sample": "sample", "train-gate": "train_gate",
            "compare": "compare", "ablate": "compare", "sudoku": "sudoku", "translate": "translate",
            "seq2seq": "seq2seq", "recipes": "recipes", "export": "export", "plan": "plan",
            "compress": "compress", "decompress": "compress",
            "table": "table", "judge": "judge", "view": "view", "demo": "demo"}


def _module(command: str):
    return importlib.import_module(f"ardm.cli.{COMMANDS[command]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ardm", epilog=EPILOG,
        description="Autoregressive diffusion language models that can revise their own tokens.")
    parser.add_argument("--version", action="version", version=f"ardm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):  # a module may add several commands
        importlib.import_module(f"ardm.cli.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _module(args.command).run(args)
    except ArdmError as e:
        print(f"ardm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ardm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
