"""ardm.tasks.seq2seq.beam: width 1 is greedy, hypotheses stop at EOS, a wider beam never scores lower."""

from __future__ import annotations

import pytest
import torch

from ardm.errors import ArdmError
from ardm.tasks.seq2seq.beam import beam_search
from tests.toy_models import contextual


def _logprob(model, seq: torch.Tensor, P: int, eos: int) -> float:
    total = 0.0
    for i in range(P, seq.shape[0]):
        lp = model(seq[None, :i])[0][0, -1].double().log_softmax(-1)
        total += float(lp[seq[i]])
        if int(seq[i]) == eos:
            break
    return total


def test_width_one_is_greedy_and_eos_ends_a_hypothesis():
    model = contextual(attention="causal", max_len=12)
    prompts = torch.tensor([[1, 2], [3, 0]])
    out, passes = beam_search(model, prompts, 8, eos_id=4, beam=1, cache=False)
    x = prompts.clone()
    for _ in range(8):
        x = torch.cat([x, model(x)[0][:, -1].argmax(-1, keepdim=True)], 1)
    for b in range(2):
        row, ref = out[b].tolist(), x[b].tolist()
        end = ref.index(4, 2) + 1 if 4 in ref[2:] else len(ref)
        assert row[:end] == ref[:end] and all(v == 4 for v in row[end:])
    assert 1 <= passes <= 8


def test_a_wider_beam_finds_at_least_greedys_log_probability_unpenalised():
    model = contextual(attention="causal", max_len=10)
    prompts = torch.tensor([[1, 2]])
    greedy, _ = beam_search(model, prompts, 6, eos_id=4, beam=1, cache=False)
    wide, _ = beam_search(model, prompts, 6, eos_id=4, beam=5, alpha=0.0, cache=False)
    assert _logprob(model, wide[0], 2, 4) >= _logprob(model, greedy[0], 2, 4) - 1e-9


def test_beam_needs_a_causal_model_and_width_one_or_more():
    with pytest.raises(ArdmError, match="causal"):
        beam_search(contextual(), torch.tensor([[1]]), 3, eos_id=4, cache=False)
    with pytest.raises(ArdmError, match="beam width"):
        beam_search(contextual(attention="causal"), torch.tensor([[1]]), 3, eos_id=4, beam=0, cache=False)


@pytest.mark.parametrize("beam", [1, 3])
def test_the_kv_cache_changes_no_hypothesis(beam):
    """Cached keys/values of a causal transformer, reordered with the beams, give the same search."""
    from ardm.core.config import ModelConfig
    from ardm.core.model import TransformerDenoiser

    torch.manual_seed(0)
    model = TransformerDenoiser(ModelConfig(vocab_size=7, n_layer=2, n_head=2, d_model=32, max_len=14,
                                            attention="causal", time_conditioning="none")).eval()
    prompts = torch.randint(0, 7, (3, 4))
    full, n_full = beam_search(model, prompts, 10, eos_id=6, beam=beam, cache=False)
    cached, n_cached = beam_search(model, prompts, 10, eos_id=6, beam=beam)
    assert torch.equal(full, cached) and n_full == n_cached
