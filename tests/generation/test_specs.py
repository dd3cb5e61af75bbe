"""Sampler specs: a plain `gate` means the checkpoint's own default gate (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ardm.generation.specs import SamplerSpec

ROOT = Path(__file__).resolve().parents[2]
WITH_GATE = ROOT / "checkpoints" / "shakespeare-char"  # bundled with a trained gate/
WITHOUT_GATE = ROOT / "checkpoints" / "sudoku-puzzles"


def test_plain_gate_resolves_to_the_trained_gate_when_the_checkpoint_has_one():
    spec = SamplerSpec.parse("gate:temperature=0.8")
    with pytest.raises(ValueError, match="resolve"):
        assert spec.calibrated  # undecided: it may be a trained gate, which is never calibrated
    learned = spec.resolve(WITH_GATE)
    assert learned.options == {"gate": "learned"} and not learned.calibrated
    assert learned.temperature == 0.8 and learned.label == spec.label
    linear = spec.resolve(WITHOUT_GATE)
    assert linear.options == {"gate": "linear"} and linear.calibrated


def test_explicit_choices_and_other_samplers_are_left_alone():
    for text in ("gate-linear:b_h=0", "gate:gate=none", "gate-learned", "remdm:eta=0.1"):
        spec = SamplerSpec.parse(text)
        assert spec.resolve(WITH_GATE) == spec == spec.resolve(WITHOUT_GATE)
    assert SamplerSpec.parse("gate-linear").resolve(WITH_GATE).calibrated


def test_built_default_gate_runs_with_the_trained_scorer_and_its_stored_options():
    sampler = SamplerSpec.parse("gate").build(WITH_GATE)
    assert sampler.options.gate == "learned" and sampler.scorer is not None
    assert sampler.options.mode == "remdm"  # the bundled gate was trained for mode=remdm
    assert SamplerSpec.parse("gate").build(WITHOUT_GATE).options.gate == "linear"


def test_one_default_gate_rule_for_specs_and_the_sample_command():
    from ardm.core.checkpoint import read_checkpoint
    from ardm.generation.gate.store import default_gate_choice, gate_sampler

    for folder in (WITH_GATE, WITHOUT_GATE):
        choice = default_gate_choice(read_checkpoint(folder, verify=False))
        sampler, _ = gate_sampler(folder, {})  # what `ardm sample --sampler gate` runs
        assert SamplerSpec.parse("gate").resolve(folder).options["gate"] == choice == sampler.options.gate
    gate_dir = str(WITH_GATE / "gate")  # a given gate folder means the learned gate on any checkpoint
    assert default_gate_choice(read_checkpoint(WITHOUT_GATE, verify=False), gate_dir) == "learned"
