"""`edit`, threshold token editing (SPEC §6.7): reveals, edits, blocks, temperature and pacing."""

from __future__ import annotations

import torch

from ardm.generation.loop import generate
from ardm.generation.registry import make_sampler
from tests.generation.test_samplers import positions, run
from tests.toy_models import contextual, positional, switching


def test_edit_reveals_above_threshold_and_stops_when_nothing_changes():
    g = run(positional(scale=6.0), "edit", steps=20, length=12, sample=False)  # every candidate has q > 0.5
    assert g.nfe == 2  # step 1 reveals all; step 2 writes nothing: done
    assert g.writes == [10] and g.overwrites_selected == [0]


def test_edit_forces_one_reveal_when_nothing_is_confident():
    g = run(positional(scale=0.1), "edit", steps=20, length=12, sample=False)  # q ≈ 0.22 < 0.5 everywhere
    written = positions(g.trace["records"], "written")
    assert [len(w) for w in written[:10]] == [1] * 10


def test_edit_overwrites_tokens_whose_argmax_changed():
    g = run(switching(), "edit", steps=20, length=12, sample=False)
    recs = g.trace["records"]
    assert len(positions(recs, "written")[0]) == 10  # call 1: confident token 1 everywhere
    assert {(e[1], e[2]) for e in recs[1]["overwritten"][0]} == {(1, 2)}  # call 2 prefers 2: T2T
    assert g.overwrites_effective == [10] and g.nfe == 3 and (g.tokens[0, 2:] == 2).all()


def test_edit_blocks_settle_in_order():
    g = run(positional(scale=6.0), "edit", steps=20, length=12, block_length=5, sample=False)
    written = positions(g.trace["records"], "written")
    assert written[0] == set(range(2, 7)) and written[2] == set(range(7, 12))
    assert g.nfe == 4


def edit_texts(temperature, seeds=(0, 1), **opts):
    model = contextual()
    return [generate(model, make_sampler("edit", **opts), length=12, steps=6, seed=seed,
                     temperature=temperature, prompt=torch.tensor([1, 2])).tokens[0].tolist()
            for seed in seeds]


def test_edit_follows_the_run_temperature():
    """Issue 15: edit drew argmax candidates whatever the temperature (100 identical samples)."""
    a, b = edit_texts(1.0)
    assert a != b  # temperature 1: the seed matters
    a, b = edit_texts(0.0)
    assert a == b  # temperature 0 is argmax everywhere
    assert edit_texts(1.0, sample=False) == [a, a]  # sample=false keeps the argmax rule at any temperature


def test_edit_paces_its_reveals_to_the_budget():
    """With nothing confident it revealed one MASK per step and left the rest to the loop's argmax
    fill; paced, it reveals ceil(MASKs left / steps left) and the fill pass has nothing to do."""
    paced = run(positional(scale=0.1), "edit", steps=4, length=12)
    assert [len(w) for w in positions(paced.trace["records"], "written")] == [3, 3, 2, 2]
    assert paced.nfe == 4 and not any(r.get("final_fill") for r in paced.trace["records"])
    slow = run(positional(scale=0.1), "edit", steps=4, length=12, pace=False)
    assert [len(w) for w in positions(slow.trace["records"], "written")][:4] == [1, 1, 1, 1]
    assert slow.nfe == 5 and slow.trace["records"][-1].get("final_fill")
