"""Argument parsing shared by several commands."""

from __future__ import annotations

from ardm.errors import ArdmError


def int_list(text: str, what: str = "NFE budgets") -> list[int]:
    """'8,16,32' -> [8, 16, 32]; ArdmError naming `what` for anything else."""
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ArdmError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not out:
        raise ArdmError(f"no {what[:-1] if what.endswith('s') else what} given")
    return out


def float_list(text: str, what: str) -> list[float]:
    """'0.7,0.8' -> [0.7, 0.8]; ArdmError naming --`what` for a non-number or an empty list (the
    bounds are the library's to check)."""
    try:
        out = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ArdmError(f"--{what} must be comma-separated numbers, got {text!r}") from None
    if not out:
        raise ArdmError(f"no {what} given (--{what} {text!r})")
    return out
