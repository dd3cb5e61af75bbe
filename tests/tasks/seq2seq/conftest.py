"""A tiny synthetic parallel corpus (word-for-word "translation") and two tiny models trained on it
in a few seconds: the prefix denoiser and its causal prefix-LM twin (recipes' seq2seq builders)."""

from __future__ import annotations

import random

import pytest

from ardm.training.loop import train
from ardm.training.recipes import _seq2seq, _seq2seq_ar

WORDS = "cat dog bird fish red blue green small big runs sleeps eats".split()
GERMAN = dict(zip(WORDS, "katze hund vogel fisch rot blau gruen klein gross rennt schlaeft isst".split()))


def write_corpus(folder, n_train: int = 300, seed: int = 0):
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", 20), ("test", 12)):
        src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]
        (folder / f"{split}.src").write_text("\n".join(src) + "\n")
        tgt = [" ".join(GERMAN[w] for w in s.split()) for s in src]
        (folder / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
    return folder


@pytest.fixture(scope="session")
def seq2seq_models(tmp_path_factory):
    """(data folder, denoiser run dir, AR twin run dir)."""
    root = tmp_path_factory.mktemp("seq2seq")
    data = write_corpus(root / "data")
    cfg = _seq2seq("toy-seq2seq", str(data), "src,tgt", 8, 10, 100)
    cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model = 1, 2, 32
    t = cfg.train
    t.max_minutes, t.max_steps, t.batch_size, t.warmup_steps = 0, 30, 16, 5
    t.eval_interval = t.ckpt_interval = 30
    train(cfg, root / "diffusion", progress=False)
    train(_seq2seq_ar(cfg, "toy-seq2seq-ar"), root / "ar", progress=False)
    return data, root / "diffusion", root / "ar"
