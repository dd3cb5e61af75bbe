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


class Recording(torch.nn.Module):
    """The model, keeping the logits each pass gives the positions the sampler writes."""

    def __init__(self, model):
        super().__init__()
        self.m, self.cfg, self.seen = model, model.cfg, []

    def forward(self, x, t):
        logits, h = self.m(x, t)
        self.seen.append(logits)
        return logits, h

    def forward_armd_cached(self, *args):
        logits, h = self.m.forward_armd_cached(*args)
        self.seen.append(logits)
        return logits, h


@pytest.mark.parametrize("streams", [1, 4])
def test_the_armd_cache_is_exact(streams):
    """Cached strided generation (content computed once, S queries a step) writes the same tokens
    from the same logits as full two-stream passes, with far fewer stream tokens."""
    model, runs = armd_model(), {}
    for cache in ("none", "exact"):
        rec = Recording(model)
        prompt = torch.tensor([3]) if streams == 1 else None  # a prompt's content is cached too
        steps = (16 - (streams == 1)) // streams
        g = generate(rec, make_sampler("strided", streams=streams), length=16, steps=steps,
                     batch=2, prompt=prompt, cache=cache, seed=5)
        runs[cache] = (g, rec.seen)
    (plain, full), (cached, part) = runs["none"], runs["exact"]
    assert torch.equal(plain.tokens, cached.tokens) and plain.nfe == cached.nfe == len(part)
    start = 1 if streams == 1 else 0
    m = (16 - start) // streams
    for k, (a, b) in enumerate(zip(full, part)):
        pos = [start + s * m + k for s in range(streams)]
        torch.testing.assert_close(a[:, pos], b, rtol=1e-5, atol=1e-5)
    assert sum(cached.token_forwards) < sum(plain.token_forwards) / 4
