"""Sampler specs: `NAME[:KEY=VALUE...]`, optionally labelled `LABEL=SPEC`, as `ardm compare`,
`ardm ablate` and `ardm sudoku` take them, e.g.

    fixed   remdm:strategy=loop   gate   gate-learned   no-entropy=gate:b_h=0   gate:temperature=1.2

`gate` is the default gate of the checkpoint it runs on (`resolve`): the trained gate beside it
when it has one, with that gate's stored options (the configuration the quality-diversity frontier
ranks best, issue 15: docs/gate.md), else the linear gate with calibrated normalisation statistics
(SPEC §6.8). `gate-linear` and `gate-learned` (or `gate-learned:path=DIR`) choose explicitly;
`temperature=` overrides the run's
temperature for that spec. `block=W`, `cache=NAME` and `approximate=1` are options of the loop
(`generate`'s block_size, cache, approximate; ardm compare passes them), e.g.
`dual=mdlm:block=32:cache=dual:approximate=1` (docs/speed.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ardm.core.checkpoint import read_checkpoint
from ardm.errors import ArdmError
from ardm.generation.gate.store import default_gate_choice, gate_sampler
from ardm.generation.registry import Sampler, make_sampler, parse_options

ALIASES = {"gate": ("gate", []), "gate-linear": ("gate", ["gate=linear"]),
           "gate-learned": ("gate", ["gate=learned"])}
OWN_KEYS = ("path", "temperature", "block", "cache", "approximate")  # not sampler options
CALIBRATION_SEED_OFFSET = 1_000_000  # calibration draws never reuse the evaluation seeds
SIGNAL_OPTIONS = ("y_tilde", "margin")  # gate options that change what a signal measures


@dataclass
class SamplerSpec:
    label: str
    name: str
    options: dict[str, Any]  # typed sampler options (parse_options)
    gate_path: str | None = None  # gate-learned:path=DIR
    temperature: float | None = None  # NAME:temperature=T overrides the run's temperature (entropy matching)
    loop: dict[str, Any] = field(default_factory=dict)  # generate()'s block_size, cache, approximate

    @classmethod
    def parse(cls, text: str) -> SamplerSpec:
        text = text.strip()
        head = text.split("=", 1)[0]
        label, spec = (head, text.split("=", 1)[1]) if "=" in text and ":" not in head else (text, text)
        name, *pairs = spec.split(":")
        if name in ALIASES:
            name, pairs = ALIASES[name][0], ALIASES[name][1] + pairs
        own = {k: v for k, _, v in (p.partition("=") for p in pairs) if k in OWN_KEYS}
        pairs = [p for p in pairs if p.partition("=")[0] not in own]
        if not label or not name:
            raise ArdmError(f"sampler spec {text!r} is empty")
        try:
            temperature = float(own["temperature"]) if "temperature" in own else None
        except ValueError:
            raise ArdmError(f"sampler spec {text!r}: temperature must be a number") from None
        loop: dict[str, Any] = {}
        try:
            if "block" in own:
                loop["block_size"] = int(own["block"])
        except ValueError:
            raise ArdmError(f"sampler spec {text!r}: block must be an integer") from None
        if "cache" in own:
            loop["cache"] = own["cache"]
        if "approximate" in own:
            loop["approximate"] = own["approximate"].lower() in ("1", "true", "yes")
        return cls(label, name, parse_options(name, pairs), own.get("path"), temperature, loop)

    def resolve(self, checkpoint) -> SamplerSpec:
        """This spec on `checkpoint`: a `gate` that does not choose (no gate=) becomes the trained
        gate beside the checkpoint (or in path=) when there is one, else the linear gate. Every run
        resolves its specs before it calibrates or builds them, so one name means one configuration
        per checkpoint, as `ardm sample --sampler gate` and `Pipeline.generate` read it."""
        if self.name != "gate" or "gate" in self.options:
            return self
        choice = default_gate_choice(read_checkpoint(checkpoint, verify=False), self.gate_path)
        return replace(self, options={**self.options, "gate": choice})

    def build(self, checkpoint, device: str = "cpu", stats=None) -> Sampler:
        """The sampler this spec names on `checkpoint` (resolved first). A trained gate is loaded from
        beside `checkpoint` (or from path=); `stats` are the calibrated normalisation statistics a
        `calibrated` linear gate runs with (SPEC §6.8)."""
        spec = self.resolve(checkpoint)
        if spec.name == "gate" and spec.options["gate"] not in ("linear", "none"):
            sampler, _ = gate_sampler(checkpoint, dict(spec.options), spec.gate_path, device)
        else:
            sampler = make_sampler(spec.name, **spec.options)
        if spec.calibrated and stats is not None:
            sampler.stats = stats
        return sampler

    @property
    def signal_options(self) -> dict[str, Any]:
        """The options that define the gate's raw signals (y_tilde, margin): a calibration run
        must measure the same signals the spec's gate will normalise."""
        return {k: v for k, v in self.options.items() if k in SIGNAL_OPTIONS}

    @property
    def calibrated(self) -> bool:
        """A linear gate without its own statistics file: calibrate at each budget (SPEC §6.8). Only
        on a resolved spec (`resolve`): an undecided `gate` may be a trained one."""
        o = self.options
        if self.name == "gate" and "gate" not in o:
            raise ValueError(f"sampler spec {self.label!r}: resolve() it against its checkpoint first")
        return self.name == "gate" and o.get("gate") == "linear" and not o.get("stats_file")


def one_run_sampler(text: str) -> tuple[str, dict[str, Any], str | None]:
    """A spec used for one run (`ardm sample --sampler`, `Pipeline.generate(sampler=...)`): its sampler
    name, typed options and gate path. Temperature and the loop's settings are that call's own
    arguments there, so a spec carrying them is refused rather than silently overriding them."""
    spec = SamplerSpec.parse(text)
    if spec.label != text.strip() or spec.temperature is not None or spec.loop:
        raise ArdmError(f"sampler {text!r}: a label, temperature= or the loop's block= / cache= / "
                        "approximate= belong to `ardm compare` specs; give them as this call's own "
                        "arguments (temperature, block size, cache)")
    return spec.name, spec.options, spec.gate_path
