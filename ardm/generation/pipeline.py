"""`ardm.load(DIR).generate(prompt, sampler="gate", steps=64)`: from a checkpoint to text and stats.

    import ardm
    out = ardm.load("checkpoints/shakespeare-char").generate("ROMEO:\\n", sampler="gate", steps=64)
    print(out.text, out.samples[0]["nfe"], out.samples[0]["overwrites"])

`ardm sample` is this call with command-line flags (ardm/cli/sample.py). Sampler names mean what
they mean everywhere: `gate` is the checkpoint's trained gate when one sits beside it (with the
options it was trained for), else the linear gate (ardm.generation.gate.store.gate_sampler).
Sample i uses seed `seed + i`, so results do not depend on `batch_size`; with `mbr=K` sample i is
the MBR choice among candidates with seeds seed + iK .. seed + iK + K - 1 (SPEC §6.9).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ardm.core.checkpoint import Loaded
from ardm.core.checkpoint import load as load_checkpoint
from ardm.errors import ArdmError
from ardm.generation.loop import generate
from ardm.generation.registry import SAMPLERS, Sampler, make_sampler
from ardm.generation.specs import one_run_sampler


@dataclass
class Samples:
    """What `Pipeline.generate` returns: one record per sample (seed, text, nfe, token_forwards,
    writes, overwrites {selected, effective}, remasks; `mbr` with MBR) and the run's settings."""

    samples: list[dict[str, Any]]
    sampler: str
    options: dict[str, Any]  # the sampler's full options (a trained gate's stored ones included)
    steps: int
    length: int
    wall_time_s: float
    note: str | None = None  # e.g. which gate ran ("using the trained mlp gate in ...")
    traces: list[dict] = field(default_factory=list, repr=False)  # per batch, with trace=True

    @property
    def text(self) -> str:
        return self.samples[0]["text"]

    @property
    def texts(self) -> list[str]:
        return [s["text"] for s in self.samples]


@dataclass
class Pipeline(Loaded):
    """A loaded checkpoint (.model, .tokenizer, .config, .meta, .path) that can generate text."""

    def sampler(self, name: str = "gate", gate_path: str | os.PathLike | None = None,
                **options: Any) -> tuple[Sampler, str | None]:
        """The sampler `name` with typed options, checked against this model, and a note for the
        user (which gate ran) or None. gate_path: a gate folder from `ardm train-gate` (name "gate";
        the option gate="linear" | "none" | "learned" chooses the kind explicitly). `name` may be a
        spec as `ardm compare` writes it, e.g. "gate-linear" or "gate:reveal=joint" (its options are
        overridden by `options`)."""
        name, spec_options, spec_gate = one_run_sampler(name)  # a plain name parses to itself
        options, gate_path = {**spec_options, **options}, gate_path or spec_gate
        if name == "gate":
            from ardm.generation.gate.store import gate_sampler

            SAMPLERS["gate"].Options(**options)  # bad options fail before the gate is read
            sampler, note = gate_sampler(self.path, options, None if gate_path is None else str(gate_path),
                                         next(self.model.parameters()).device)
        elif gate_path is not None:
            raise ArdmError("a gate folder applies to the gate sampler only")
        else:
            sampler, note = make_sampler(name, **options), None  # an unknown name fails here
        sampler.check_model(self.model.cfg.attention, self.config.noise.kind)
        return sampler, note

    def generate(self, prompt: str = "", *, sampler: str = "gate", steps: int = 64, num: int = 1,
                 length: int | None = None, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, mbr: int = 1, batch_size: int = 16,
                 gate_path: str | os.PathLike | None = None, block_size: int = 0, cache: str = "none",
                 approximate: bool = False, progress: bool = False, trace: bool = False,
                 **options: Any) -> Samples:
        """`num` samples of `length` tokens (prompt included; default the training length) with the
        sampler `sampler` in `steps` steps (the NFE budget). `options` are the sampler's own
        (e.g. strategy="loop" for remdm, mode="remdm" for gate); temperature 0 = argmax; block_size,
        cache and approximate as in `ardm.generation.loop.generate`."""
        check_counts(num=num, steps=steps, batch_size=batch_size, mbr=mbr)
        policy, note = self.sampler(sampler, gate_path, **options)
        if length is None:
            length = min(self.config.data.seq_len, self.model.cfg.max_len)
        ids = torch.tensor(self.tokenizer.encode(prompt), dtype=torch.long)
        start, samples, traces = time.perf_counter(), [], []
        total = num * mbr
        for first in range(0, total, batch_size):
            g = generate(self.model, policy, length=length, steps=steps, batch=min(batch_size, total - first),
                         prompt=ids, seed=seed + first, temperature=temperature, top_k=top_k, top_p=top_p,
                         progress=progress, trace=trace, block_size=block_size, cache=cache,
                         approximate=approximate)
            samples += [_record(g, b, seed + first + b, self.tokenizer.decode(row))
                        for b, row in enumerate(g.tokens.tolist())]
            if trace:
                traces.append({"first_sample": first, **(g.trace or {})})
        if mbr > 1:
            from ardm.generation.mbr import mbr_choose

            samples = mbr_choose(samples, mbr)
        return Samples(samples, policy.name, dataclasses.asdict(policy.options), steps, length,
                       round(time.perf_counter() - start, 4), note, traces)


def check_counts(*, as_flags: bool = False, **counts: int) -> None:
    """Every count of a generation call (num, steps, batch_size, mbr) is >= 1; `as_flags` names
    them as the command line spells them (--batch-size), so `ardm sample` fails before loading."""
    for name, value in counts.items():
        if value < 1:
            shown = "--" + name.replace("_", "-") if as_flags else name
            raise ArdmError(f"{shown} must be >= 1, got {value}")


def _record(g, b: int, seed: int, text: str) -> dict[str, Any]:
    c = g.row_counts(b)
    return {"seed": seed, "text": text, "nfe": c["nfe"], "token_forwards": c["token_forwards"],
            "writes": c["writes"],
            "overwrites": {"selected": c["overwrites_selected"], "effective": c["overwrites_effective"]},
            "remasks": c["remasks"]}


def load(path: str | os.PathLike, device: str = "cpu") -> Pipeline:
    """`ardm.load(DIR)`: a checkpoint (or a run directory's latest one) ready to generate."""
    loaded = load_checkpoint(path, device)
    return Pipeline(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(Loaded)})
