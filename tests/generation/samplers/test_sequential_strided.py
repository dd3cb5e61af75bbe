"""ARMD strided parallel generation (SPEC §5.3): S streams, NFE = n / S, every step writes one
position of each stream; S must divide n."""

import pytest
import torch

from ardm.core.config import ModelConfig
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError
from ardm.generation.loop import generate
from ardm.generation.registry import make_sampler


def armd_model(L=16):
    torch.manual_seed(0)
    return TransformerDenoiser(ModelConfig(vocab_size=7, n_layer=1, n_head=2, d_model=16, max_len=L,
                                           attention="armd", time_conditioning="none")).eval()


@pytest.mark.parametrize("streams", [1, 2, 4, 8])
def test_strided_streams_cost_n_over_s(streams):
    g = generate(armd_model(), make_sampler("strided", streams=streams), length=16, steps=16 // streams,
                 batch=2, trace=True)
    assert g.nfe == 16 // streams and (g.tokens < 7).all()
    m = 16 // streams
    for j, rec in enumerate(g.trace["records"]):
        assert sorted(p for p, _ in rec["written"][0]) == [s * m + j for s in range(streams)]


def test_strided_bad_input():
    with pytest.raises(ArdmError, match="must divide"):
        generate(armd_model(), make_sampler("strided", streams=3), length=16, steps=5)
    with pytest.raises(ArdmError, match="take exactly steps = 4"):
        generate(armd_model(), make_sampler("strided", streams=4), length=16, steps=8)
    with pytest.raises(ArdmError, match="use strided"):
        generate(armd_model(), make_sampler("mdlm"), length=16, steps=8)
    with pytest.raises(ArdmError, match="needs a armd model"):
        generate(TransformerDenoiser(ModelConfig(vocab_size=7, n_layer=1, n_head=2, d_model=16, max_len=16)),
                 make_sampler("strided"), length=16, steps=4)
