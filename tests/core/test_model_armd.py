"""ARMD (SPEC §5.3): the one-pass likelihood equals the K-pass likelihood of the same orders, and
the identity order with K = n is an AR model's n-pass NLL."""

import pytest
import torch

from ardm.core.config import ModelConfig, RunConfig, apply_overrides
from ardm.core.model import TransformerDenoiser
from ardm.core.objectives import armd_blocks, make_objective, strided_blocks, token_nll
from ardm.errors import ArdmError
from ardm.training.recipes import get_recipe

V, L = 9, 16


def _model() -> TransformerDenoiser:
    torch.manual_seed(0)
    return TransformerDenoiser(ModelConfig(vocab_size=V, n_layer=2, n_head=2, d_model=32, max_len=L,
                                           attention="armd", time_conditioning="none")).eval()


def k_pass_nll(m: TransformerDenoiser, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """K passes as generation makes them: pass k sees the tokens of blocks < k (MASK elsewhere, at
    block id k) and scores block k."""
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    for k in beta.unique().tolist():
        seen = beta < k
        z = torch.where(seen, x, V)
        logits, _ = m(z, torch.where(seen, beta, float(k)))
        total += (token_nll(logits, x) * (beta == k)).sum(1).double()
    return total


@pytest.mark.parametrize("kind", ["identity", "strided-4", "permutation"])
def test_one_pass_equals_k_passes(kind):
    m = _model()
    x = torch.randint(0, V, (2, L), generator=torch.Generator().manual_seed(1))
    if kind == "identity":
        beta = strided_blocks(L, 1).float().expand(2, L)
    elif kind == "strided-4":
        beta = strided_blocks(L, 4).float().expand(2, L)
    else:
        beta = torch.stack([torch.randperm(L).float() + 1 for _ in range(2)])
    logits, _ = m(x, beta)
    one = token_nll(logits, x).sum(1).double()
    assert torch.allclose(one, k_pass_nll(m, x, beta), atol=1e-4)


def test_identity_order_is_an_ar_model():
    """beta = identity, K = n: position i is scored from x_{<i} alone, as an AR model scores it."""
    m = _model()
    x = torch.randint(0, V, (1, L))
    logits, _ = m(x, strided_blocks(L, 1).float()[None])
    for i in range(L):
        y = x.clone()
        y[:, i + 1:] = (x[:, i + 1:] + 1) % V  # the future changes nothing
        other, _ = m(y, strided_blocks(L, 1).float()[None])
        assert torch.allclose(other[:, i], logits[:, i], atol=1e-5)


def test_training_mix_and_config():
    beta = armd_blocks(64, L, torch.Generator().manual_seed(0))
    assert beta.shape == (64, L) and bool((beta >= 1).all())
    assert any(torch.equal(b, strided_blocks(L, 1).float()) for b in beta)
    cfg = get_recipe("shakespeare-char-armd")
    cfg.model.vocab_size, cfg.model.max_len, cfg.data.seq_len = V, L, L
    m = TransformerDenoiser(cfg.model)
    loss, _ = make_objective(cfg).loss(m, torch.randint(0, V, (3, L)), torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and m.tok_emb.weight.grad is not None
    with pytest.raises(ArdmError, match="time_conditioning='none'"):
        ModelConfig(attention="armd")
    with pytest.raises(ArdmError, match="train.objective='armd'"):
        apply_overrides(RunConfig(), ["train.objective=armd"])


def test_rho_ramp_starts_at_the_identity_order_and_reaches_the_mix():
    identity = strided_blocks(L, 1).float()
    only_ar = armd_blocks(32, L, torch.Generator().manual_seed(0), rho=0.0)
    assert all(torch.equal(b, identity) for b in only_ar)
    cfg = get_recipe("shakespeare-char-armd")
    cfg.train.armd_rho_ramp = 0.5
    objective = make_objective(cfg)
    objective.progress = 0.0
    assert objective.rho == 0.0
    objective.progress = 0.25
    assert objective.rho == pytest.approx(0.25)
    objective.progress = 0.9
    assert objective.rho == 0.5
    with pytest.raises(ArdmError, match="armd_rho_ramp"):
        apply_overrides(RunConfig(), ["train.armd_rho_ramp=2"])
