"""Semi-AR blocks and the exact KV cache in the one loop (SPEC §11.6): cached and uncached runs
see the same logits on every step, token-forwards count what was recomputed, bad input is refused."""

from __future__ import annotations

import pytest
import torch

from ardm.core.config import ModelConfig
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError
from ardm.generation.loop import generate
from ardm.generation.registry import make_sampler
from tests.toy_models import positional

V, BS, L = 7, 8, 32
POLICIES = [("mdlm", {}), ("llada", {}), ("remdm", {"strategy": "conf", "eta": 0.5}), ("edit", {}),
            ("gate", {}), ("gate", {"fill": "schedule", "mode": "remask", "mask": "threshold", "theta": 0.2})]


class Recording(torch.nn.Module):
    """The model, with every pass's logits of the current block kept (its last BS positions)."""

    def __init__(self, model: TransformerDenoiser):
        super().__init__()
        self.m, self.cfg, self.seen = model, model.cfg, []

    def forward(self, x, t):
        logits, h = self.m(x, t)
        self.seen.append(logits[:, -BS:])
        return logits, h

    def forward_cached(self, x, t, cache, commit=0):
        logits, h = self.m.forward_cached(x, t, cache, commit)
        self.seen.append(logits[:, -BS:])
        return logits, h


def block_model(**kw) -> TransformerDenoiser:
    torch.manual_seed(0)
    return TransformerDenoiser(ModelConfig(vocab_size=V, n_layer=2, n_head=2, d_model=32, max_len=L,
                                           attention="block_causal", block_size=BS, **kw)).eval()


@pytest.mark.parametrize("name, opts", POLICIES, ids=[f"{n}-{len(o)}" for n, o in POLICIES])
def test_cached_and_uncached_runs_agree_step_by_step(name, opts):
    model = block_model()
    runs = {}
    for cache in ("none", "exact"):
        rec = Recording(model)
        g = generate(rec, make_sampler(name, **opts), length=L, steps=16, batch=2,
                     prompt=torch.tensor([1, 2, 3]), seed=3, cache=cache)
        runs[cache] = (g, rec.seen)
    (plain, seen_plain), (cached, seen_cached) = runs["none"], runs["exact"]
    assert len(seen_plain) == len(seen_cached) == plain.nfe == cached.nfe
    for a, b in zip(seen_plain, seen_cached):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # fp32 rounding
    assert torch.equal(plain.tokens, cached.tokens)
    assert plain.writes == cached.writes and plain.nfe_per_sample == cached.nfe_per_sample
    assert all(c < p for c, p in zip(cached.token_forwards, plain.token_forwards))


def test_token_forwards_count_recomputed_positions():
    """mdlm, 4 blocks of 8, 2 steps each, eps 0 (no fill pass): uncached passes read the sequence up
    to the block's end, cached ones the block (plus, once per block, the block settled before it)."""
    g0 = generate(block_model(), make_sampler("mdlm"), length=L, steps=8, prompt=torch.tensor([1]))
    g1 = generate(block_model(), make_sampler("mdlm"), length=L, steps=8, prompt=torch.tensor([1]),
                  cache="exact")
    assert g0.nfe == g1.nfe == 8
    assert g0.token_forwards == [2 * (8 + 16 + 24 + 32)]
    assert g1.token_forwards == [8 + 8 + 3 * (16 + 8)]


def test_blocks_fill_in_order_on_a_bidirectional_model():
    g = generate(positional(max_len=16), make_sampler("mdlm"), length=16, steps=8, block_size=4,
                 prompt=torch.tensor([0]), trace=True, temperature=0)
    blocks = [r["block"] for r in g.trace["records"]]
    assert blocks == sorted(blocks) and {tuple(b) for b in blocks} == {(0, 4), (4, 8), (8, 12), (12, 16)}
    for r in g.trace["records"]:
        assert all(r["block"][0] <= pos < r["block"][1] for pos, _ in r["written"][0])
    assert (g.tokens[0] == torch.arange(16) % 5).all() and g.token_forwards == [16 * g.nfe]


def test_bad_input_is_one_clear_error():
    sampler = make_sampler("mdlm")
    with pytest.raises(ArdmError, match="exact KV cache needs a block_causal or armd model.*inexact"):
        generate(positional(), sampler, length=16, steps=4, cache="exact")
    with pytest.raises(ArdmError, match="must divide the length"):
        generate(positional(), sampler, length=15, steps=4, block_size=4)
    with pytest.raises(ArdmError, match="must divide the length"):
        generate(block_model(), sampler, length=20, steps=4)
    with pytest.raises(ArdmError, match="trained on blocks of 8"):
        generate(block_model(), sampler, length=L, steps=4, block_size=4)
    with pytest.raises(ArdmError, match="multiple of the number of blocks"):
        generate(block_model(), sampler, length=L, steps=6)
    with pytest.raises(ArdmError, match="cache must be one of"):
        generate(block_model(), sampler, length=L, steps=4, cache="maybe")


def test_approximate_caches_count_less_and_measure_their_drift():
    torch.manual_seed(0)
    model = TransformerDenoiser(ModelConfig(vocab_size=V, n_layer=2, n_head=2, d_model=32, max_len=L)).eval()
    kw = dict(length=L, steps=16, block_size=BS, prompt=torch.tensor([1]), seed=0)
    plain = generate(model, make_sampler("mdlm"), **kw)
    assert plain.cache_drift is None and plain.token_forwards == [L * plain.nfe]
    for cache in ("prefix", "dual"):
        g = generate(model, make_sampler("mdlm"), cache=cache, approximate=True, cache_drift=True, **kw)
        assert g.nfe == plain.nfe and g.token_forwards[0] < plain.token_forwards[0]
        # 4 blocks of 4 steps: the first pass of each block refreshes, the other 3 reuse
        assert len(g.cache_drift) == 12 and all(d >= -1e-6 for d in g.cache_drift)
    dual = generate(model, make_sampler("mdlm"), cache="dual", approximate=True, **kw)
    assert dual.token_forwards == [4 * L + 12 * BS]


def test_approximate_caches_need_asking():
    bi = positional(max_len=16)
    with pytest.raises(ArdmError, match="approximate.*--approximate"):
        generate(bi, make_sampler("mdlm"), length=16, steps=4, block_size=4, cache="dual")
    with pytest.raises(ArdmError, match="give a block size"):
        generate(bi, make_sampler("mdlm"), length=16, steps=4, cache="prefix", approximate=True)
    with pytest.raises(ArdmError, match="use the exact cache"):
        generate(block_model(), make_sampler("mdlm"), length=L, steps=4, cache="dual", approximate=True)


def test_specs_carry_loop_options():
    from ardm.generation.specs import SamplerSpec

    spec = SamplerSpec.parse("dual=mdlm:block=32:cache=dual:approximate=1")
    assert spec.label == "dual" and spec.name == "mdlm" and spec.options == {}
    assert spec.loop == {"block_size": 32, "cache": "dual", "approximate": True}
    assert SamplerSpec.parse("llada").loop == {}
    with pytest.raises(ArdmError, match="block must be an integer"):
        SamplerSpec.parse("mdlm:block=x")
