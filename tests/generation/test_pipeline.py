"""`ardm.load(DIR).generate(...)`: the one-line Python call behind `ardm sample`."""

from __future__ import annotations

from pathlib import Path

import pytest

import ardm
from ardm.core.checkpoint import Loaded
from ardm.errors import ArdmError

BUNDLED = Path(__file__).resolve().parents[2] / "checkpoints" / "shakespeare-char"


def test_generate_returns_texts_and_per_sample_stats_independent_of_the_batch(tiny_models):
    model = ardm.load(tiny_models[0])
    assert isinstance(model, Loaded)  # .model, .tokenizer, .config as before
    out = model.generate("a", sampler="remdm", steps=4, num=3, length=8, seed=5, batch_size=2, eta=0.1)
    assert [s["seed"] for s in out.samples] == [5, 6, 7] and len(out.texts) == 3
    assert all(t.startswith("a") and len(t) == 8 for t in out.texts) and out.text == out.texts[0]
    assert all(s["nfe"] >= 4 and s["writes"] >= 7 for s in out.samples)
    assert out.sampler == "remdm" and out.options["eta"] == 0.1 and out.steps == 4 and out.length == 8
    again = model.generate("a", sampler="remdm", steps=4, num=3, length=8, seed=5, batch_size=3, eta=0.1)
    assert again.texts == out.texts


def test_mbr_picks_one_of_k_candidates_and_counts_their_nfe(tiny_models):
    out = ardm.load(tiny_models[0]).generate(sampler="mdlm", steps=3, num=2, length=6, mbr=3, trace=True)
    assert len(out.samples) == 2 and len(out.traces) == 1
    first = out.samples[0]["mbr"]
    assert first["candidate_seeds"] == [0, 1, 2] and first["chosen_seed"] in (0, 1, 2)
    assert out.samples[0]["nfe"] >= 9  # MBR multiplies NFE by k (SPEC §6.10)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be >= 1"),
    ({"sampler": "nope"}, "unknown sampler"),
    ({"sampler": "mdlm", "gate_path": "somewhere"}, "gate sampler only"),
    ({"sampler": "gate", "gate": "learned"}, "no trained gate"),
    ({"sampler": "gate", "gate_path": "nowhere"}, "no gate in nowhere"),
])
def test_bad_requests_fail_with_one_clear_error(tiny_models, kwargs, message):
    with pytest.raises(ArdmError, match=message):
        ardm.load(tiny_models[0]).generate(**{"length": 6, "steps": 2, **kwargs})


def test_the_default_gate_of_the_bundled_denoiser_is_its_trained_gate():
    model = ardm.load(BUNDLED)
    out = model.generate("ROMEO:", sampler="gate", steps=4, length=12)
    assert out.options["gate"] == "learned" and out.options["mode"] == "remdm"
    assert "trained" in out.note and out.text.startswith("ROMEO:")
    linear = model.generate("ROMEO:", sampler="gate", steps=4, length=12, gate="linear")
    assert linear.options["gate"] == "linear" and linear.note is None


def test_a_compare_style_spec_names_the_same_sampler_as_name_plus_options(tiny_models):
    model = ardm.load(tiny_models[0])
    kw = {"steps": 3, "num": 2, "length": 8, "seed": 1, "temperature": 0.7}
    spec = model.generate("a", sampler="gate:reveal=joint:eta=0.2", **kw)
    plain = model.generate("a", sampler="gate", reveal="joint", eta=0.2, **kw)
    assert spec.texts == plain.texts and spec.options == plain.options and spec.options["reveal"] == "joint"
    assert model.generate("a", sampler="gate:eta=0.2", eta=0.3, **kw).options["eta"] == 0.3  # kwargs win
    assert model.generate("a", sampler="gate-linear", **kw).options["gate"] == "linear"
    for bad in ("gate:temperature=2", "mine=gate", "mdlm:block=4"):
        with pytest.raises(ArdmError, match="belong to `ardm compare` specs"):
            model.generate("a", sampler=bad, **kw)
