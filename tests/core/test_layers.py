"""ardm.core.layers: RoPE, the time embedding, the inference linear and the functional block."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ardm.core.config import ModelConfig
from ardm.core.layers import Block, Linear, apply_rope, block_forward, rope_tables, timestep_embedding


def test_rope_preserves_norm_and_relative_positions():
    """RoPE is a rotation: norms are kept, and q.k depends only on the position offset."""
    hd, L = 8, 10
    rope = rope_tables(hd, L)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 1, hd, generator=g).expand(1, 1, L, hd)
    k = torch.randn(1, 1, 1, hd, generator=g).expand(1, 1, L, hd)
    rq, rk = apply_rope(q, rope), apply_rope(k, rope)
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    dots = (rq[0, 0][:, None, :] * rk[0, 0][None, :, :]).sum(-1)  # [L, L]
    for off in range(-3, 4):
        d = torch.diagonal(dots, offset=off)
        assert torch.allclose(d, d[0].expand_as(d), atol=1e-4)


def test_timestep_embedding_distinguishes_levels():
    """The sinusoidal time features have the requested width and separate nearby levels."""
    e = timestep_embedding(torch.tensor([[0.0, 0.001, 0.5]]), 32)
    assert e.shape == (1, 3, 32)
    assert (e[0, 0] - e[0, 1]).abs().max() > 1e-2
    assert torch.allclose(e[0, 0], torch.cat([torch.ones(16), torch.zeros(16)]))


def test_inference_linear_matches_and_follows_weight_updates():
    torch.manual_seed(0)
    lin, x = Linear(8, 5), torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias), atol=1e-6)
        lin.weight.mul_(2.0)  # an in-place update (optimizer step): the cached transpose is remade
        assert torch.allclose(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias), atol=1e-6)
        lin.load_state_dict({"weight": torch.zeros(5, 8), "bias": torch.ones(5)})
        assert torch.equal(lin(x), torch.ones(3, 5))
    y = lin(x)  # autograd on: the ordinary path, gradients reach the weight
    y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def _by_hand(block: Block, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """The pre-norm block written out with nn modules' own calls (no dropout)."""
    h = block.ln1(x)
    B, L, D = x.shape
    H = block.attn.n_head
    qkv = F.linear(h, block.attn.qkv.weight).view(B, L, 3, H, D // H).permute(2, 0, 3, 1, 4)
    q, k, v = apply_rope(qkv[0], rope), apply_rope(qkv[1], rope), qkv[2]
    y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, D)
    x = x + F.linear(y, block.attn.proj.weight)
    return x + F.linear(F.gelu(F.linear(block.ln2(x), block.mlp.fc.weight)), block.mlp.proj.weight)


def test_block_forward_is_the_pre_norm_block_with_and_without_autograd():
    """The functional block (what the trunk calls with cached transposed weights) computes the
    block as written out by hand, under autograd (training) and without it (sampling), and the
    module call and the functional call agree."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, n_layer=1, n_head=2, d_model=16, max_len=8)
    block = Block(cfg).eval()
    x, rope = torch.randn(2, 8, 16), rope_tables(8, 8)
    expect = _by_hand(block, x, rope)
    out, (k, v) = block_forward(x, block.weights(), 2, rope, None, False)
    assert torch.allclose(out, expect, atol=1e-5) and k.shape == v.shape == (2, 2, 8, 8)
    out.sum().backward()
    assert block.mlp.fc.weight.grad is not None and block.attn.qkv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        fast, _ = block_forward(x, block.weights(), 2, rope, None, False)
        module, _ = block(x, rope, None, False)
    assert torch.allclose(fast, expect, atol=1e-5) and torch.equal(fast, module)


def test_block_dropout_only_in_training():
    torch.manual_seed(0)
    block = Block(ModelConfig(vocab_size=5, n_layer=1, n_head=2, d_model=16, max_len=8, dropout=0.5))
    x, rope = torch.randn(1, 8, 16), rope_tables(8, 8)
    with torch.no_grad():
        a, _ = block(x, rope, None, False)
        b, _ = block(x, rope, None, False)
        block.eval()
        c, _ = block(x, rope, None, False)
        d, _ = block(x, rope, None, False)
    assert not torch.equal(a, b) and torch.equal(c, d)
