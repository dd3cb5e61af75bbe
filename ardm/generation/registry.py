"""The sampler registry: every policy of the one generation loop by name (SPEC §6).

`SAMPLERS` maps a name to its class; each class has a typed `Options` dataclass validated on
construction (ArdmError with a clear message). `make_sampler("gate", mask="threshold")`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ardm.core.registry import Registry
from ardm.errors import ArdmError
from ardm.generation.gate.sampler import GateSampler
from ardm.generation.samplers.acs import ACSSampler
from ardm.generation.samplers.base import Sampler, StepState, TokenSampling, WriteSet
from ardm.generation.samplers.edit import EditSampler
from ardm.generation.samplers.fixed import FixedScheduleSampler
from ardm.generation.samplers.masked import LLaDASampler, MDLMSampler
from ardm.generation.samplers.planned import PlannedSampler
from ardm.generation.samplers.remdm import ReMDMSampler
from ardm.generation.samplers.sequential import ARSampler, L2RSampler, StridedSampler

SAMPLERS: Registry[type[Sampler]] = Registry("sampler", "samplers")
for _cls in (L2RSampler, ARSampler, FixedScheduleSampler, MDLMSampler, LLaDASampler, ReMDMSampler, ACSSampler,
             EditSampler, GateSampler, PlannedSampler, StridedSampler):
    SAMPLERS.add(_cls.name, _cls)


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
                convert: Any = type(default)
                out[key] = convert(raw)
        except ValueError:
            raise ArdmError(f"sampler option {key}: {raw!r} is not a valid "
                            f"{type(default).__name__}") from None
    return out


__all__ = ["SAMPLERS", "Sampler", "StepState", "WriteSet", "TokenSampling", "make_sampler", "parse_options",
           "ACSSampler", "ARSampler", "EditSampler", "FixedScheduleSampler", "GateSampler", "L2RSampler",
           "LLaDASampler", "MDLMSampler", "ReMDMSampler"]
