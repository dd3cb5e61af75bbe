"""ardm.core.model: the transformer denoiser's shapes, attention masks and time conditioning."""

from __future__ import annotations

import pytest
import torch

from ardm.core.config import ModelConfig
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError

V = 11


def _model(seed: int = 0, **kw) -> TransformerDenoiser:
    torch.manual_seed(seed)
    args = {"vocab_size": V, "n_layer": 2, "n_head": 2, "d_model": 32, "max_len": 16}
    args.update(kw)
    return TransformerDenoiser(ModelConfig(**args)).eval()


def _tokens(B: int = 3, L: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(seed))


def _perturb_time_mlp(m: TransformerDenoiser) -> None:
    with torch.no_grad():
        m.time_mlp[-1].weight.normal_(0, 0.5)
        m.time_mlp[-1].bias.normal_(0, 0.5)


def test_output_shapes_and_dtype():
    """logits [B, L, V] float32 (no MASK logit) and hidden [B, L, d]."""
    m = _model()
    x = _tokens(3, 12)
    logits, h = m(x, torch.rand(3, 12))
    assert logits.shape == (3, 12, V) and logits.dtype == torch.float32
    assert h.shape == (3, 12, 32)
    assert torch.isfinite(logits).all() and torch.isfinite(h).all()


def test_mask_id_is_valid_input():
    """MASK = vocab_size is an input token; an all-MASK sequence gives finite V-way logits."""
    m = _model()
    assert m.cfg.mask_id == V and m.tok_emb.num_embeddings == V + 1
    z = torch.full((2, 8), V)
    logits, _ = m(z, torch.ones(2, 8))
    assert logits.shape == (2, 8, V) and torch.isfinite(logits).all()
    x = _tokens(2, 8)
    a, _ = m(x, torch.ones(2, 8))
    assert not torch.allclose(a, logits)  # MASK has its own embedding


def test_time_accepted_per_sequence_or_per_token():
    """t of shape [B] means the same level at every position of that sequence."""
    m = _model()
    _perturb_time_mlp(m)
    x = _tokens(2, 10)
    t = torch.tensor([0.2, 0.9])
    a, _ = m(x, t)
    b, _ = m(x, t[:, None].expand(2, 10))
    assert torch.allclose(a, b)


def test_causal_attention_ignores_future_tokens():
    """Causal: changing token j leaves logits at positions < j unchanged, and changes later ones."""
    m = _model(attention="causal", time_conditioning="none")
    x = _tokens(2, 12)
    y = x.clone()
    j = 7
    y[:, j] = (y[:, j] + 1) % V
    a, _ = m(x)
    b, _ = m(y)
    assert torch.allclose(a[:, :j], b[:, :j], atol=1e-6)
    assert not torch.allclose(a[:, j:], b[:, j:], atol=1e-4)


def test_bidirectional_attention_sees_future_tokens():
    """Bidirectional: changing token j changes the logits at earlier positions too."""
    m = _model()
    x = _tokens(2, 12)
    y = x.clone()
    j = 7
    y[:, j] = (y[:, j] + 1) % V
    t = torch.full((2, 12), 0.5)
    a, _ = m(x, t)
    b, _ = m(y, t)
    assert (a[:, :j] - b[:, :j]).abs().amax() > 1e-4


def test_causal_with_pad_mask_is_still_causal():
    """A causal model with a pad mask keeps both the causal and the padding constraint."""
    m = _model(attention="causal", time_conditioning="none")
    x = _tokens(2, 10)
    pad = torch.ones(2, 10, dtype=torch.bool)
    pad[:, 8:] = False
    y = x.clone()
    y[:, 5] = (y[:, 5] + 1) % V
    y[:, 9] = (y[:, 9] + 1) % V
    a, _ = m(x, pad_mask=pad)
    b, _ = m(y, pad_mask=pad)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    ref, _ = m(x)  # no padding among the first 8 keys for positions < 8: same as unmasked
    assert torch.allclose(a[:, :8], ref[:, :8], atol=1e-5)


def test_pad_mask_hides_padded_tokens():
    """Bidirectional: changing a padded token does not change logits of the real positions,
    which equal the logits of the unpadded shorter sequence."""
    m = _model()
    L, real = 12, 8
    x = _tokens(2, L)
    pad = torch.zeros(2, L, dtype=torch.bool)
    pad[:, :real] = True
    y = x.clone()
    y[:, real:] = (y[:, real:] + 3) % V
    t = torch.full((2, L), 0.4)
    a, _ = m(x, t, pad_mask=pad)
    b, _ = m(y, t, pad_mask=pad)
    assert torch.allclose(a[:, :real], b[:, :real], atol=1e-6)
    short, _ = m(x[:, :real], t[:, :real])
    assert torch.allclose(a[:, :real], short, atol=1e-5)
    c, _ = m(y, t)  # without the mask the change is visible
    assert (a[:, :real] - c[:, :real]).abs().amax() > 1e-4


def test_time_conditioning_starts_neutral():
    """The time MLP's last layer is zero-initialised: a fresh model ignores t."""
    m = _model()
    x = _tokens(2, 10)
    a, _ = m(x, torch.zeros(2, 10))
    b, _ = m(x, torch.rand(2, 10))
    assert torch.equal(a, b)


def test_per_token_time_conditioning_is_used():
    """Once the time MLP is non-zero, changing t at position j changes the output at j
    (and through attention elsewhere), while other tokens' t are kept."""
    m = _model()
    _perturb_time_mlp(m)
    x = _tokens(2, 10)
    t = torch.full((2, 10), 0.5)
    t2 = t.clone()
    j = 3
    t2[:, j] = 0.9
    a, _ = m(x, t)
    b, _ = m(x, t2)
    assert (a[:, j] - b[:, j]).abs().amax() > 1e-4
    assert (a[:, j + 1] - b[:, j + 1]).abs().amax() > 1e-6


def test_per_token_time_is_per_position_in_causal_model():
    """Per-token t respects causality: changing t at j leaves earlier positions unchanged."""
    m = _model(attention="causal")
    _perturb_time_mlp(m)
    x = _tokens(1, 10)
    t = torch.full((1, 10), 0.5)
    t2 = t.clone()
    t2[:, 6] = 0.1
    a, _ = m(x, t)
    b, _ = m(x, t2)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)
    assert (a[:, 6] - b[:, 6]).abs().amax() > 1e-4


def test_time_conditioning_none_ignores_t():
    """time_conditioning='none' has no time MLP and gives the same output for any t."""
    m = _model(time_conditioning="none")
    assert not hasattr(m, "time_mlp")
    x = _tokens(2, 10)
    a, _ = m(x)
    b, _ = m(x, torch.rand(2, 10))
    assert torch.equal(a, b)


def test_time_conditioned_model_requires_t():
    """A per-token time-conditioned model refuses to run without t."""
    with pytest.raises(ValueError, match="noise levels"):
        _model()(_tokens(1, 4))


def test_length_limit():
    """Sequences up to max_len run; longer ones raise."""
    m = _model(max_len=16)
    m(_tokens(1, 16), torch.rand(1, 16))
    with pytest.raises(ValueError, match="max_len"):
        m(_tokens(1, 17), torch.rand(1, 17))


def test_num_params():
    """num_params is positive and excludes exactly the embedding and output matrices."""
    m = _model()
    total = sum(p.numel() for p in m.parameters())
    assert 0 < m.num_params() < total == m.num_params(non_embedding=False)
    assert total - m.num_params() == (V + 1) * 32 + V * 32
    bigger = _model(n_layer=3)
    assert bigger.num_params() > m.num_params()


def test_vocab_size_must_be_set():
    """Building a model with vocab_size 0 (not yet set from a tokenizer) is an error."""
    with pytest.raises(ValueError, match="vocab_size"):
        TransformerDenoiser(ModelConfig(d_model=32, n_head=2, n_layer=1))


def test_input_embeds_replace_lookup():
    """Passing the embeddings of the tokens as input_embeds gives the same output."""
    m = _model()
    x = _tokens(2, 8)
    t = torch.rand(2, 8)
    a, _ = m(x, t)
    b, _ = m(x, t, input_embeds=m.embed(x))
    assert torch.allclose(a, b)


def test_position_dependence_via_rope():
    """RoPE makes attention position-aware: a sequence and its rotation give different logits
    at the same token (beyond a permutation of rows)."""
    m = _model()
    x = _tokens(1, 8)
    t = torch.full((1, 8), 0.5)
    a, _ = m(x, t)
    b, _ = m(torch.roll(x, 1, dims=1), t)
    assert not torch.allclose(torch.roll(a, 1, dims=1), b, atol=1e-5)


def test_absolute_positions_break_shift_invariance_only_when_asked():
    """RoPE alone sees offsets: a constant input gives the same output at every position (away from
    nothing but itself). With abs_pos each position gets its own embedding, so outputs differ."""
    from ardm.core.config import ModelConfig
    from ardm.core.model import TransformerDenoiser

    torch.manual_seed(0)
    kw = dict(vocab_size=5, n_layer=1, n_head=2, d_model=16, max_len=8, time_conditioning="none")
    x = torch.full((1, 8), 2)
    plain = TransformerDenoiser(ModelConfig(**kw))
    logits, _ = plain(x)
    assert torch.allclose(logits[0, 0], logits[0, 5], atol=1e-5)
    with_pos = TransformerDenoiser(ModelConfig(**kw, abs_pos=True))
    logits, _ = with_pos(x)
    assert not torch.allclose(logits[0, 0], logits[0, 5], atol=1e-5)
    assert with_pos.num_params() == plain.num_params()  # the position table counts as embedding


def test_peer_heads_see_only_row_column_and_box():
    from ardm.core.model import peer_mask

    m = peer_mask(4, 2)
    assert m.shape == (4, 82, 82) and bool(m[2:].all())
    cell = lambda r, c: 1 + 9 * r + c  # noqa: E731  position of a cell (0 is the newline)
    assert m[0, cell(0, 0), cell(0, 8)] and m[0, cell(0, 0), cell(8, 0)] and m[0, cell(0, 0), cell(2, 2)]
    assert not m[0, cell(0, 0), cell(3, 3)] and m[0, cell(4, 4), 0] and m[0, 0, cell(4, 4)]
    assert int(m[0, cell(4, 4), 1:].sum()) == 21  # 20 peers and itself
    # one layer whose heads are all peer heads: a cell's output ignores the cells it cannot see
    torch.manual_seed(0)
    model = TransformerDenoiser(ModelConfig(vocab_size=10, n_layer=1, n_head=2, d_model=16, max_len=82,
                                            peer_heads=2)).eval()
    x = torch.randint(0, 10, (1, 82))
    y = x.clone()
    y[0, cell(8, 8)] = (x[0, cell(8, 8)] + 1) % 10
    a, _ = model(x, torch.full((1, 82), 0.5))
    b, _ = model(y, torch.full((1, 82), 0.5))
    assert torch.allclose(a[0, cell(0, 0)], b[0, cell(0, 0)], atol=1e-6)  # not a peer of (8, 8)
    assert not torch.allclose(a[0, cell(8, 0)], b[0, cell(8, 0)], atol=1e-6)  # same row


def test_unit_heads_see_one_row_column_or_box_each():
    from ardm.core.model import peer_mask

    m = peer_mask(4, 4, units=True)
    cell = lambda r, c: 1 + 9 * r + c  # noqa: E731
    a = cell(4, 4)
    assert int(m[0, a, 1:].sum()) == int(m[1, a, 1:].sum()) == int(m[2, a, 1:].sum()) == 9  # its unit
    assert m[0, a, cell(4, 0)] and not m[0, a, cell(0, 4)]  # row head
    assert m[1, a, cell(0, 4)] and not m[1, a, cell(4, 0)]  # column head
    assert m[2, a, cell(3, 5)] and not m[2, a, cell(4, 0)]  # box head
    assert torch.equal(m[3], peer_mask(4, 1)[0]) and bool(m[:, a, 0].all())  # all peers; the newline
    with pytest.raises(ArdmError, match="peer_units needs"):
        ModelConfig(vocab_size=10, max_len=82, peer_units=True)


def test_peer_heads_need_a_sudoku_denoiser():
    with pytest.raises(ArdmError, match="peer_heads"):
        ModelConfig(vocab_size=10, max_len=256, peer_heads=2)
    with pytest.raises(ArdmError, match="peer_heads must be in"):
        ModelConfig(vocab_size=10, max_len=82, peer_heads=5)


def test_kept_inference_weights_follow_every_parameter_change():
    """Without autograd a pass reads a kept snapshot of the weights (KeptWeights); it must be retaken
    after an in-place update, load_state_dict and a dtype move, so outputs always equal the ones
    computed with autograd on from the same parameters."""
    torch.manual_seed(0)
    m = _model()
    _perturb_time_mlp(m)
    x, t = _tokens(), torch.rand(3, 12)

    def both():
        with torch.no_grad():
            fast, _ = m(x, t)
        slow, _ = m(x, t)
        return fast, slow

    fast, slow = both()
    assert torch.allclose(fast, slow, atol=1e-5)
    assert m.kept_weights() is None  # autograd on: the modules' own parameters are used
    with torch.no_grad():
        first = m.kept_weights()
        assert m.kept_weights() is first  # nothing changed: the same snapshot
        m.blocks[0].mlp.fc.weight.mul_(1.5)  # an optimizer-like in-place update
        assert m.kept_weights() is not first
    fast, slow = both()
    assert torch.allclose(fast, slow, atol=1e-5)
    state = {k: v * 0.5 if k.startswith("time_mlp") or k.startswith("head") else v
             for k, v in m.state_dict().items()}
    m.load_state_dict(state)
    fast, slow = both()
    assert torch.allclose(fast, slow, atol=1e-5)
    with torch.no_grad():
        m(x, t)  # keep a snapshot of the current weights
    m.half().float()  # .to() rounds the weights without bumping their versions
    fast, slow = both()
    assert torch.allclose(fast, slow, atol=1e-5)
