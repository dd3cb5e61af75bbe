"""Order-agnostic ARDM objective (SPEC §4.1) and exact one-order likelihood (SPEC §4.2(i))."""

from __future__ import annotations

import pytest
import torch

from ardm.core.config import ModelConfig
from ardm.core.noise import OrderAgnosticNoise
from ardm.evaluation.likelihood import order_nll


class IIDModel(torch.nn.Module):
    """Predicts a fixed distribution p at every position whatever the context."""

    def __init__(self, logits: torch.Tensor, max_len: int = 16):
        super().__init__()
        self.cfg = ModelConfig(vocab_size=len(logits), n_layer=1, n_head=1, d_model=8, max_len=max_len)
        self.logits = torch.nn.Parameter(logits)

    def forward(self, tokens, t=None, pad_mask=None):
        B, L = tokens.shape
        return self.logits.expand(B, L, -1).clone(), torch.zeros(B, L, 1)


def test_exactly_ceil_tD_positions_are_masked_with_weight_D_over_m():
    noise = OrderAgnosticNoise(5)
    D = 10
    x = torch.randint(0, 5, (6, D), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.05, 0.1, 0.11, 0.5, 0.99, 1.0])[:, None].expand(6, D)
    c = noise.corrupt(x, t, torch.Generator().manual_seed(1))
    assert c.masked.sum(1).tolist() == [1, 1, 2, 5, 10, 10]
    assert (c.z[c.masked] == 5).all() and torch.equal(c.z[~c.masked], x[~c.masked])
    w = noise.token_weights(c, t)
    for b, m in enumerate([1, 1, 2, 5, 10, 10]):
        assert torch.allclose(w[b][c.masked[b]], torch.full((m,), D / m))
        assert (w[b][~c.masked[b]] == 0).all()


def test_one_draw_loss_is_the_sequence_nll_for_an_iid_model():
    """For an i.i.d. model every masked position costs -log p(x_i) whatever is known, so the
    weighted loss (D/m) sum_masked CE equals sum_i -log p(x_i) in expectation over the mask."""
    V, D = 4, 8
    model = IIDModel(torch.tensor([1.0, 0.2, -0.5, 0.0]), D)
    noise = OrderAgnosticNoise(V)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (1, D), generator=g).expand(4000, D)
    t = torch.rand(4000, 1, generator=g).expand(4000, D)
    c = noise.corrupt(x, t, g)
    logits, _ = model(c.z)
    per_seq = noise.token_loss(logits, x, c, t).sum(1)
    want = float(-model.logits.detach().log_softmax(0)[x[0]].sum())
    se = per_seq.std().item() / 4000 ** 0.5
    assert abs(per_seq.mean().item() - want) < 4 * se + 1e-6


def test_exact_order_nll_equals_the_sum_of_conditionals():
    V, D = 4, 6
    model = IIDModel(torch.tensor([0.3, -1.0, 0.5, 0.0]), D)
    x = torch.randint(0, V, (3, D), generator=torch.Generator().manual_seed(2))
    order = torch.randperm(D, generator=torch.Generator().manual_seed(3))
    want = -model.logits.detach().log_softmax(0)[x].sum(1).double()
    assert torch.allclose(order_nll(model, x, order), want, atol=1e-5)


def test_trained_order_agnostic_model_exact_order_nll_is_close_to_the_elbo(tmp_path):
    """On a tiny trained model the exact one-order NLL and the MC bound agree within noise."""
    from ardm.core.checkpoint import load
    from ardm.data.sources import load_corpus
    from ardm.data.tokens import encode, eval_blocks
    from ardm.evaluation.likelihood import absorbing_nelbo
    from ardm.training.loop import train
    from tests.conftest import tiny_config

    cfg = tiny_config(steps=40)
    cfg.noise.kind = "order_agnostic"
    cfg.model.time_conditioning = "none"
    train(cfg, tmp_path / "r", progress=False)
    m = load(tmp_path / "r")
    x = eval_blocks(encode(m.tokenizer, load_corpus(m.config.data).val), 16)[:8]
    exact = torch.stack([order_nll(m.model, x, torch.randperm(16, generator=torch.Generator().manual_seed(s)))
                         for s in range(4)]).mean()
    bound = absorbing_nelbo(m.model, x, 16, torch.Generator().manual_seed(0)).mean()
    assert exact.item() == pytest.approx(bound.item(), rel=0.1)


def test_cli_exact_order_estimator(tmp_path, capsys):
    import json

    from ardm.cli import main
    from ardm.training.loop import train
    from tests.conftest import tiny_config

    cfg = tiny_config(steps=3)
    cfg.noise.kind = "order_agnostic"
    train(cfg, tmp_path / "r", progress=False)
    assert main(["eval", "--checkpoint", str(tmp_path / "r"), "--estimator", "exact-order",
                 "--max-windows", "3", "--draws", "2", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["estimator"] == "exact NLL of 2 random order(s) per window"
    assert rep["windows"] == 3 and rep["tokens"] == 3 * 16 and rep["bits_per_char"] > 0
