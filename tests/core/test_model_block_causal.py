"""The block-causal denoiser (BD3-LM reading, SPEC §11.6): its masks, the two-copy input and the
exact KV cache agree with plain forward passes."""

import pytest
import torch

from ardm.core.config import ModelConfig, RunConfig, apply_overrides
from ardm.core.kv_cache import KVCache
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError

V, BS, L = 11, 4, 16


def _model(**kw) -> TransformerDenoiser:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, n_layer=2, n_head=2, d_model=32, max_len=L,
                      attention="block_causal", block_size=BS, **kw)
    return TransformerDenoiser(cfg).eval()


def test_two_copy_equals_one_block_at_a_time():
    """Noisy block b in the two-copy pass sees exactly clean blocks < b and itself: its logits are
    those of a single-copy pass over [clean blocks < b, noisy block b]."""
    m = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (2, L), generator=g)
    z = torch.where(torch.rand(2, L, generator=g) < 0.5, V, x)
    t = torch.rand(2, L, generator=g)
    two, _ = m(z, t, clean=x)
    for b in range(L // BS):
        end = (b + 1) * BS
        inp = torch.cat([x[:, :b * BS], z[:, b * BS:end]], 1)
        tt = torch.cat([torch.zeros(2, b * BS), t[:, b * BS:end]], 1)
        one, _ = m(inp, tt)
        assert torch.allclose(two[:, b * BS:end], one[:, b * BS:end], atol=1e-5)


def test_cached_windows_equal_full_passes():
    m = _model()
    x = torch.randint(0, V + 1, (3, L), generator=torch.Generator().manual_seed(2))
    t = torch.rand(3, L)
    full, _ = m(x, t)
    cache = KVCache()
    for b in range(L // BS):
        window = slice(b * BS, (b + 1) * BS)
        logits, _ = m.forward_cached(x[:, window], t[:, window], cache, commit=BS)
        assert cache.length == (b + 1) * BS
        assert torch.allclose(logits, full[:, window], atol=1e-5)
    # a window of two blocks (the settled block and the next) commits only the first
    cache = KVCache()
    m.forward_cached(x[:, :BS], t[:, :BS], cache, commit=BS)
    logits, _ = m.forward_cached(x[:, BS:3 * BS], t[:, BS:3 * BS], cache, commit=BS)
    assert cache.length == 2 * BS and torch.allclose(logits, full[:, BS:3 * BS], atol=1e-5)


def test_clean_copy_only_for_block_causal_models():
    m = TransformerDenoiser(ModelConfig(vocab_size=V, n_layer=1, n_head=2, d_model=16, max_len=8))
    x = torch.zeros(1, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="block_causal"):
        m(x, torch.ones(1, 8), clean=x)
    with pytest.raises(ValueError, match="block_causal"):
        m.forward_cached(x, torch.ones(1, 8), KVCache())


def test_block_size_validated():
    with pytest.raises(ArdmError, match="divide model.max_len"):
        ModelConfig(vocab_size=V, max_len=10, attention="block_causal", block_size=4)
    with pytest.raises(ArdmError, match="block_causal' only"):
        ModelConfig(vocab_size=V, block_size=4)
    cfg = RunConfig()
    with pytest.raises(ArdmError, match="divide data.seq_len"):
        apply_overrides(cfg, ["model.attention=block_causal", "model.block_size=16", "data.seq_len=200"])
    ok = apply_overrides(cfg, ["model.attention=block_causal", "model.block_size=16"])
    assert ok.model.block_size == 16


def test_objective_trains_every_block_in_one_pass():
    """The diffusion objective feeds a block_causal model the two-copy input: the loss has gradients
    and equals the per-block losses of single-copy passes (one pass trains every block)."""
    from ardm.core.objectives import denoise
    from ardm.training.recipes import get_recipe

    cfg = get_recipe("shakespeare-char-block")
    assert cfg.model.attention == "block_causal" and cfg.data.seq_len % cfg.model.block_size == 0
    m = _model()
    x = torch.randint(0, V, (2, L))
    z = torch.where(torch.rand(2, L) < 0.5, V, x)
    t = torch.full((2, L), 0.5)
    logits, _ = denoise(m, z, t, x)
    logits.sum().backward()
    assert m.tok_emb.weight.grad is not None and logits.shape == (2, L, V)
