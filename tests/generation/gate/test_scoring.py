"""The gate's signals: the margin of the token in place (margin="current") against top1 - top2."""

from __future__ import annotations

import torch

from ardm.generation.gate.options import GateOptions
from ardm.generation.gate.scoring import margin, margin_of, signals

MASK = 4


def test_margin_of_the_argmax_is_the_top2_gap_and_negative_for_a_disfavoured_token():
    logits = torch.tensor([[[3.0, 1.0, 0.0, -1.0], [0.0, 5.0, 1.0, 0.0]]])
    y = torch.tensor([[0, 2]])
    got = margin_of(logits, y)
    assert torch.allclose(got[0, 0], margin(logits)[0, 0])  # the argmax: same as top2
    assert torch.allclose(got[0, 1], torch.tensor(1.0 - 5.0))  # the model prefers symbol 1 by 4


def test_current_margin_flags_a_confidently_contradicted_token_and_keeps_top2_at_masks():
    logits = torch.tensor([[[0.0, 6.0, 0.0, 0.0], [0.0, 6.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]])
    x = torch.tensor([[1, 2, MASK]])  # agreed, contradicted, masked
    top2 = signals(logits, None, x, MASK)[..., 1]
    own = signals(logits, None, x, MASK, margin_kind="current")[..., 1]
    assert torch.equal(top2[0, :2], torch.tensor([6.0, 6.0]))  # top2 calls both certain
    assert own[0, 0] == 6.0 and own[0, 1] == -6.0
    assert own[0, 2] == top2[0, 2] == 2.0
    assert GateOptions(margin="current").margin == "current"


def test_a_spec_calibrates_the_signals_it_will_normalise():
    from ardm.generation.specs import SamplerSpec

    assert SamplerSpec.parse("gate:margin=current:b0=-2").signal_options == {"margin": "current"}
    assert SamplerSpec.parse("gate").signal_options == {}
