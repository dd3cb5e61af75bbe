"""The gate ablations of SPEC §8.4, as labelled sampler specs for `ardm ablate` (ardm.evaluation.compare).

Labels avoid "=" and "," (they are `LABEL=SPEC` and comma-separated on the command line). Each
entry changes one thing of the linear gate (`gate-linear`: a plain `gate` is the checkpoint's trained
gate when it has one, ardm.generation.specs) (SPEC §6.8 defaults: b0 = -4, betas 1,
alpha 1, delta 0.5, noisy-OR, Bernoulli masks, count-rule reveals: fill=schedule). Sparsity-lambda
sweeps need gates trained with other lambdas: add them as `gate-learned:path=DIR` specs
(`ardm ablate --extra`).
"""

from __future__ import annotations

from ardm.errors import ArdmError

ABLATIONS: dict[str, str] = {
    "linear": "gate-linear",
    "no entropy": "gate-linear:b_h=0",
    "no margin": "gate-linear:b_m=0",
    "no confidence change": "gate-linear:b_d=0",
    "entropy only": "gate-linear:b_m=0:b_d=0",
    "margin only": "gate-linear:b_h=0:b_d=0",
    "confidence change only": "gate-linear:b_h=0:b_m=0",
    "u only (no prior)": "gate-linear:prior=false",
    "prior only (u 0)": "gate:gate=none",
    "max of u and r": "gate-linear:combine=max",
    "u times r": "gate-linear:combine=product",
    "learned (MLP)": "gate-learned",
    "threshold mask": "gate-linear:mask=threshold",
    "alpha 0.25": "gate-linear:alpha=0.25",
    "alpha 4": "gate-linear:alpha=4",
    "delta 0": "gate-linear:delta=0",
    "delta 1": "gate-linear:delta=1",
    "y~ argmax": "gate-linear:y_tilde=argmax",
    "remask mode": "gate-linear:mode=remask",
    "full draft (fill all)": "gate-linear:fill=all",
    "remdm budget": "gate-linear:mode=remdm",
}

QUICK = ("linear", "no entropy", "no margin", "no confidence change", "u only (no prior)",
         "prior only (u 0)", "max of u and r", "learned (MLP)", "threshold mask")


def ablation_specs(names: list[str] | None = None, extra: list[str] | None = None) -> list[str]:
    """`LABEL=SPEC` strings for the named ablations (default: all), plus extra specs as given."""
    names = list(ABLATIONS) if not names else names
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ArdmError(f"unknown ablation(s) {unknown}; known: {', '.join(ABLATIONS)}")
    return [f"{n}={ABLATIONS[n]}" for n in names] + list(extra or [])
