"""Caches of keys/values (SPEC §11.6): Fast-dLLM's approximate cache of a bidirectional denoiser
(when the cached tokens have not changed since the refresh, reusing their keys/values gives the full
pass's logits) and the exact cache of a causal model."""

import torch

from ardm.core.config import ModelConfig
from ardm.core.model import TransformerDenoiser


def test_reusing_unchanged_keys_equals_the_full_pass():
    torch.manual_seed(0)
    m = TransformerDenoiser(ModelConfig(vocab_size=9, n_layer=2, n_head=2, d_model=32, max_len=24)).eval()
    x, t = torch.randint(0, 10, (2, 24)), torch.rand(2, 24)
    full, _, kept = m.forward_keeping(x, t)
    assert kept.length == 24 and torch.allclose(full, m(x, t)[0], atol=1e-5)
    lo, hi = 8, 16
    dual, _ = m.forward_reusing(x[:, lo:hi], t[:, lo:hi], kept.span(0, lo), kept.span(hi, 24))
    prefix, _ = m.forward_reusing(x[:, lo:], t[:, lo:], kept.span(0, lo))
    assert torch.allclose(dual, full[:, lo:hi], atol=1e-5)
    assert torch.allclose(prefix, full[:, lo:], atol=1e-5)
    # a changed token elsewhere is seen by the full pass, not by the stale cache: approximate
    y = x.clone()
    y[:, 20] = (x[:, 20] + 1) % 9
    stale, _ = m.forward_reusing(y[:, lo:hi], t[:, lo:hi], kept.span(0, lo), kept.span(hi, 24))
    assert not torch.allclose(m(y, t)[0][:, lo:hi], stale, atol=1e-5)


def test_a_causal_model_caches_exactly_token_by_token():
    """forward_cached on a causal model: blocks of one token, so prefix + steps = the full pass."""
    from ardm.core.kv_cache import KVCache

    torch.manual_seed(0)
    m = TransformerDenoiser(ModelConfig(vocab_size=9, n_layer=2, n_head=2, d_model=32, max_len=16,
                                        attention="causal", time_conditioning="none")).eval()
    x = torch.randint(0, 9, (2, 12))
    full = m(x)[0]
    cache = KVCache()
    parts = [m.forward_cached(x[:, :5], None, cache, commit=5)[0]]
    parts += [m.forward_cached(x[:, i:i + 1], None, cache, commit=1)[0] for i in range(5, 12)]
    assert cache.length == 12
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
