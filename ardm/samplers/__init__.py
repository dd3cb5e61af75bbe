"""Samplers: small policies on the one generation loop (`ardm.generate`; SPEC §6).

`SAMPLERS` maps a name to its class; each class has a typed `Options` dataclass validated on
construction (ArdmError with a clear message). `make_sampler("gate", mask="threshold")`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ArdmError
from .acs import ACSSampler
from .base import Sampler, StepState, TokenSampling, WriteSet
from .edit import EditSampler
from .fixed import FixedScheduleSampler
from .gate import GateSampler
from .masked import LLaDASampler, MDLMSampler
from .planned import PlannedSampler
from .remdm import ReMDMSampler
from .sequential import ARSampler, L2RSampler

SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (
    L2RSampler, ARSampler, FixedScheduleSampler, MDLMSampler, LLaDASampler, ReMDMSampler, ACSSampler,
    EditSampler, GateSampler, PlannedSampler)}


def make_sampler(name: str, **options: Any) -> Sampler:
    """The sampler called `name` with keyword options; ArdmError for an unknown name or option."""
    if name not in SAMPLERS:
        raise ArdmError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    return SAMPLERS[name](**options)


def parse_options(name: str, pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings (the CLI's --set) -> typed keyword options of sampler `name`."""
    if name not in SAMPLERS:
        raise ArdmError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    fields = {f.name: f for f in dataclasses.fields(SAMPLERS[name].Options)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ArdmError(f"sampler option {pair!r} is not KEY=VALUE")
        if key not in fields:
            raise ArdmError(f"sampler {name!r} has no option {key!r} "
                            f"(options: {', '.join(fields) or 'none'})")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                out[key] = raw.lower() in ("true", "1")
            else:
                out[key] = type(default)(raw)
        except ValueError:
            raise ArdmError(f"sampler option {key}: {raw!r} is not a valid "
                            f"{type(default).__name__}") from None
    return out


__all__ = ["SAMPLERS", "Sampler", "StepState", "WriteSet", "TokenSampling", "make_sampler", "parse_options",
           "ACSSampler", "ARSampler", "EditSampler", "FixedScheduleSampler", "GateSampler", "L2RSampler",
           "LLaDASampler", "MDLMSampler", "ReMDMSampler"]
