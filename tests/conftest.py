"""Shared fixtures: tiny configs on the bundled corpus, so no test needs ../shared or a network."""

from __future__ import annotations

import pytest
import torch

from ardm.training.recipes import get_recipe

torch.set_num_threads(1)


def tiny_config(objective: str = "diffusion", steps: int = 12, **train_overrides):
    """A ~20k-parameter model on the bundled corpus: a few steps take well under a second."""
    cfg = get_recipe("demo-char" if objective == "diffusion" else "demo-char-ar")
    cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model = 1, 2, 16
    cfg.model.max_len = 17
    cfg.data.seq_len = 16
    t = cfg.train
    t.batch_size, t.max_steps, t.warmup_steps = 4, steps, 2
    t.eval_interval, t.ckpt_interval, t.log_interval, t.eval_batches = 100, 4, 1, 1
    for k, v in train_overrides.items():
        setattr(t, k, v)
    return cfg


@pytest.fixture
def tiny_cfg():
    return tiny_config()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(denoiser, causal AR reference) run folders: tiny models trained for 8 steps on the bundled
    corpus, shared by every test that needs a trained pair (read-only: write outputs elsewhere)."""
    from ardm.training.loop import train

    root = tmp_path_factory.mktemp("tiny-models")
    train(tiny_config(steps=8), root / "den", progress=False)
    train(tiny_config("ar", steps=8), root / "ar", progress=False)
    return root / "den", root / "ar"
