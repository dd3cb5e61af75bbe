"""ardm.evaluation.likelihood: the absorbing NELBO estimator is unbiased, causal NLL is exact, and a trained
denoiser's ELBO reaches the known entropy of a toy source."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ardm.core.config import DataConfig, ModelConfig, NoiseConfig, RunConfig, ScheduleConfig
from ardm.core.model import TransformerDenoiser
from ardm.core.objectives import DiffusionObjective
from ardm.core.tokenizer import CharTokenizer
from ardm.evaluation.likelihood import LN2, absorbing_nelbo, causal_nll, evaluate_text

P = torch.tensor([0.5, 0.25, 0.15, 0.1], dtype=torch.float64)
H_NATS = float(-(P * P.log()).sum())  # entropy of one symbol
ALPHABET = ["a", "b", "c", "d"]


class UnigramModel(nn.Module):
    """A 'denoiser' whose prediction at every position is the true i.i.d. distribution p."""

    def __init__(self, p: torch.Tensor, attention: str = "bidirectional"):
        super().__init__()
        self.cfg = ModelConfig(vocab_size=len(p), attention=attention, time_conditioning="none",
                               d_model=8, n_head=1, n_layer=1, max_len=64)
        self.register_buffer("logp", p.log().float())

    def forward(self, tokens, t=None, pad_mask=None):
        B, L = tokens.shape
        assert tokens.max() <= self.cfg.vocab_size  # MASK = V is the only extra id
        return self.logp.expand(B, L, -1).clone(), torch.zeros(B, L, 4)


class MarkovModel(nn.Module):
    """A causal model predicting x_{j+1} from x_j with a fixed transition matrix."""

    def __init__(self, trans: torch.Tensor):
        super().__init__()
        self.cfg = ModelConfig(vocab_size=trans.shape[0], attention="causal",
                               time_conditioning="none", d_model=8, n_head=1, n_layer=1, max_len=64)
        self.register_buffer("logT", trans.log().float())

    def forward(self, tokens, t=None, pad_mask=None):
        B, L = tokens.shape
        return self.logT[tokens], torch.zeros(B, L, 4)


def _iid(n: int, seed: int) -> torch.Tensor:
    return torch.multinomial(P, n, replacement=True, generator=torch.Generator().manual_seed(seed))


def test_absorbing_nelbo_is_unbiased_for_exact_model():
    """With the true i.i.d. distribution as denoiser, E[NELBO(x)] = -log p(x) for each x, so the
    mean over many draws equals L H(p) nats within a few Monte-Carlo standard errors."""
    N, L, D = 4000, 8, 4
    x = _iid(N * L, 0).view(N, L)
    nelbo = absorbing_nelbo(UnigramModel(P), x, D, torch.Generator().manual_seed(1)).double()
    assert nelbo.shape == (N, D)
    assert torch.all(nelbo >= 0)
    exact = -P.log()[x].sum(1)  # -log p(x) per sequence
    diff = nelbo.mean(1) - exact  # pure estimator noise
    se = diff.std() / math.sqrt(N)
    assert abs(diff.mean().item()) < 4 * se.item()
    per_seq = nelbo.mean(1)
    se_total = per_seq.std() / math.sqrt(N)
    assert abs(per_seq.mean().item() - L * H_NATS) < 4 * se_total.item()
    assert se_total.item() < 0.05 * L * H_NATS  # the check has teeth


def test_absorbing_nelbo_reproducible():
    """The same generator seed gives identical NELBO draws."""
    x = _iid(64, 0).view(8, 8)
    a = absorbing_nelbo(UnigramModel(P), x, 3, torch.Generator().manual_seed(5))
    b = absorbing_nelbo(UnigramModel(P), x, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_evaluate_text_bits_per_char_of_exact_model():
    """evaluate_text on i.i.d. text gives bits/char equal to the text's exact -log2 p within a
    few reported SEs, close to H(p)/ln 2, with consistent bookkeeping."""
    seq_len, W, D = 8, 2000, 4
    ids = _iid(seq_len * W + 5, 2)  # a partial tail window is dropped
    text = "".join(ALPHABET[i] for i in ids.tolist())
    tok = CharTokenizer(ALPHABET)
    rep = evaluate_text(UnigramModel(P), tok, text, seq_len, draws=D, batch_size=512, seed=3)
    assert (rep.windows, rep.tokens, rep.chars, rep.draws, rep.seq_len) == (W, W * seq_len,
                                                                           W * seq_len, D, seq_len)
    exact_bits = float(-P.log()[ids[: W * seq_len]].sum()) / (W * seq_len) / LN2
    assert rep.bits_per_char_se > 0 and rep.bits_per_char_se == pytest.approx(rep.bits_per_token_se)
    assert abs(rep.bits_per_char - exact_bits) < 4 * rep.bits_per_char_se
    assert abs(rep.bits_per_char - H_NATS / LN2) < 0.05
    assert rep.bits_per_token == pytest.approx(rep.bits_per_char)
    assert rep.perplexity_bound == pytest.approx(2 ** rep.bits_per_token)
    assert "NELBO" in rep.estimator and rep.to_dict()["draws"] == D


def test_evaluate_text_single_draw_has_zero_se():
    """With one draw there is no between-draw variance: the SE is reported as 0."""
    text = "".join(ALPHABET[i] for i in _iid(64, 4).tolist())
    rep = evaluate_text(UnigramModel(P), CharTokenizer(ALPHABET), text, 8, draws=1)
    assert rep.bits_per_char_se == 0 and rep.draws == 1 and rep.bits_per_char > 0


def _markov():
    g = torch.Generator().manual_seed(0)
    trans = torch.rand(4, 4, generator=g, dtype=torch.float64) + 0.1
    return trans / trans.sum(1, keepdim=True)


def test_causal_nll_is_exact():
    """causal_nll sums -log q(x_{j+1} | x_{<=j}) over each window's tokens after the first."""
    trans = _markov()
    windows = torch.randint(0, 4, (5, 9), generator=torch.Generator().manual_seed(1))
    got = causal_nll(MarkovModel(trans), windows).double()
    want = -trans.log()[windows[:, :-1], windows[:, 1:]].sum(1)
    assert got.shape == (5,)
    assert torch.allclose(got, want, rtol=1e-5)


def test_causal_nll_of_unigram_model():
    """A causal model returning log p scores exactly sum_i -log p(x_i) of the targets."""
    windows = _iid(6 * 9, 7).view(6, 9)
    got = causal_nll(UnigramModel(P, attention="causal"), windows).double()
    assert torch.allclose(got, -P.log()[windows[:, 1:]].sum(1), rtol=1e-5)


def test_evaluate_text_causal_is_exact_and_tiles_text():
    """For a causal model every token after the first is scored once (windows overlap by one
    token for context), the estimator is exact (SE 0), and the total matches by hand."""
    trans = _markov()
    seq_len, W = 8, 50
    ids = torch.randint(0, 4, (seq_len * W + 1,), generator=torch.Generator().manual_seed(2))
    text = "".join(ALPHABET[i] for i in ids.tolist())
    rep = evaluate_text(MarkovModel(trans), CharTokenizer(ALPHABET), text, seq_len, batch_size=7)
    assert rep.windows == W and rep.tokens == W * seq_len and rep.draws == 1
    assert rep.bits_per_token_se == 0 and "exact" in rep.estimator
    exact = float(-trans.log()[ids[:-1], ids[1:]].sum()) / (W * seq_len) / LN2
    assert rep.bits_per_token == pytest.approx(exact, rel=1e-5)


def test_trained_denoiser_elbo_reaches_source_entropy():
    """Train a tiny denoiser on length-8 sequences that repeat one of 4 symbols (entropy 2 bits
    per sequence = 0.25 bits/token); its absorbing ELBO must come within 0.1 bits/token of the
    entropy (the optimum of this bound is exactly the entropy) and far below the 2-bit unigram."""
    seed, L, S = 0, 8, 4
    torch.manual_seed(seed)
    cfg = RunConfig(
        model=ModelConfig(vocab_size=S, n_layer=2, n_head=2, d_model=32, max_len=L,
                          time_conditioning="none"),
        data=DataConfig(seq_len=L),
        noise=NoiseConfig(kind="absorbing"),
        schedule=ScheduleConfig(family="flat"),
    )
    model = TransformerDenoiser(cfg.model)
    objective = DiffusionObjective(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)

    def batch(n):
        return torch.randint(0, S, (n, 1), generator=g).expand(n, L).contiguous()

    model.train()
    for _ in range(300):
        loss, _ = objective.loss(model, batch(64), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    nelbo = absorbing_nelbo(model, batch(512), 8, g).double()
    bits_per_token = nelbo.mean().item() / L / LN2
    entropy_per_token = math.log2(S) / L
    assert abs(bits_per_token - entropy_per_token) < 0.1, bits_per_token
    assert bits_per_token < 1.0
