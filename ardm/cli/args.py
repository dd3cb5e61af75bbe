"""Argument parsing shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ardm.errors import ArdmError

N = TypeVar("N", int, float)


def _numbers(text: str, convert: Callable[[str], N], bad: str, empty: str) -> list[N]:
    try:
        out = [convert(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ArdmError(bad) from None
    if not out:
        raise ArdmError(empty)
    return out


def int_list(text: str, what: str = "NFE budgets") -> list[int]:
    """'8,16,32' -> [8, 16, 32]; ArdmError naming `what` for anything else."""
    return _numbers(text, int, f"{what} must be comma-separated integers, got {text!r}",
                    f"no {what[:-1] if what.endswith('s') else what} given")


def float_list(text: str, what: str) -> list[float]:
    """'0.7,0.8' -> [0.7, 0.8]; ArdmError naming --`what` for a non-number or an empty list (the
    bounds are the library's to check)."""
    return _numbers(text, float, f"--{what} must be comma-separated numbers, got {text!r}",
                    f"no {what} given (--{what} {text!r})")


def add_threads(p, hint: str = "") -> None:
    """The --threads flag of commands that run models on the CPU (0: torch's default, every core)."""
    p.add_argument("--threads", type=int, default=0, help=f"torch threads (0: torch's default){hint}")


def apply_threads(args) -> None:
    """Set torch's thread count from --threads; ArdmError for a negative count."""
    if args.threads < 0:
        raise ArdmError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def check_out_folders(args, *flags: str) -> None:
    """ArdmError before any work when the folder of an output file (--FLAG PATH) does not exist."""
    for flag in flags:
        path = getattr(args, flag)
        if path and not Path(path).parent.is_dir():
            raise ArdmError(f"--{flag} {path}: folder {Path(path).parent} does not exist")


def save_trace(args, doc: dict) -> None:
    """A trace file's content (ardm.generation.trace) to --trace (JSON) and / or --html (the page of
    its first sample, ardm.evaluation.viewer)."""
    import json

    from ardm.core.checkpoint import atomic_write_text
    from ardm.evaluation.viewer import write_page

    if args.trace:
        atomic_write_text(Path(args.trace), json.dumps(doc))
    if args.html:
        write_page(doc, args.html)
