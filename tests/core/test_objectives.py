"""ardm.core.objectives with a seq2seq prefix (SPEC §11.7): the hyperschedule runs over the target
only, the source is never noised and never scored; the causal twin scores the target only."""

from __future__ import annotations

import torch

from ardm.core.config import DataConfig, ModelConfig, NoiseConfig, RunConfig, ScheduleConfig, TrainConfig
from ardm.core.objectives import CausalObjective, DiffusionObjective


class Recorder(torch.nn.Module):
    """Uniform logits; keeps what it was fed."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.seen = vocab, []
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, t=None):
        self.seen.append((z.clone(), None if t is None else t.clone()))
        return torch.zeros(*z.shape, self.vocab) + self.w, None


def _cfg(causal: bool = False) -> RunConfig:
    L = 4 + 1 + 6
    data = DataConfig(path="x", tokenizer="bpe", seq_len=L - causal, record_len=L, source_len=4, target_len=6)
    model = ModelConfig(vocab_size=9, max_len=L, attention="causal" if causal else "bidirectional",
                        time_conditioning="none" if causal else "per_token")
    return RunConfig(model=model,
                     data=data, noise=NoiseConfig(kind="epsilon_hybrid"),
                     schedule=ScheduleConfig(family="ar_diffusion"),
                     train=TrainConfig(objective="causal" if causal else "diffusion"))


def test_diffusion_levels_and_noise_act_on_the_target_only():
    cfg = _cfg()
    obj = DiffusionObjective(cfg)
    assert obj.levels.table.shape[1] == 6  # the AR-Diffusion schedule over the 6 target positions
    x = torch.randint(0, 9, (64, 11))
    given = torch.zeros(64, 11, dtype=torch.bool)
    given[:, :5] = True
    model = Recorder(9)
    loss, _ = obj.loss(model, x, torch.Generator().manual_seed(0), given)
    z, t = model.seen[0]
    assert (t[:, :5] == 0).all() and torch.equal(z[:, :5], x[:, :5])
    assert (t[:, 5:] > 0).any() and (z[:, 5:] == 9).any()  # the target is noised (MASK = 9)
    assert torch.isfinite(loss)


def test_causal_twin_scores_the_target_only():
    cfg = _cfg(causal=True)
    obj = CausalObjective(cfg)
    x = torch.randint(0, 9, (3, 11))
    given = torch.zeros(3, 11, dtype=torch.bool)
    given[:, :5] = True
    uniform, _ = obj.loss(Recorder(9), x, None, given)
    assert torch.allclose(uniform, torch.log(torch.tensor(9.0)))

    class SureOnThePrefix(Recorder):  # confident (and mostly wrong) where the prefix is predicted
        def forward(self, z, t=None):
            logits = torch.zeros(*z.shape, self.vocab)
            logits[:, :4, 0] = 50.0  # predictions of x[:, 1:5], inside the prefix
            return logits, None

    assert torch.allclose(obj.loss(SureOnThePrefix(9), x, None, given)[0], uniform)
