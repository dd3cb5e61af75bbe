"""Compression with an ARMD checkpoint (SPEC §5.3): by default both sides run K cached strided steps;
with one_pass the encoder codes each block from ONE forward pass and the decoder runs the K passes.
Either way the round trip is exact (bit-identical probabilities)."""

from __future__ import annotations

import pytest

import ardm
from ardm.errors import ArdmError
from ardm.tasks.compression import compress, decompress
from ardm.training.loop import train
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def armd(tmp_path_factory):
    run = tmp_path_factory.mktemp("armd") / "run"
    cfg = tiny_config(steps=8)
    cfg.model.attention, cfg.model.time_conditioning, cfg.train.objective = "armd", "none", "armd"
    train(cfg, run, progress=False)
    return ardm.load(run)


@pytest.mark.parametrize("budget", [0, 4, 5])
def test_armd_round_trip_is_exact(armd, budget, monkeypatch):
    text = "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:"
    text = "".join(c for c in text if c in armd.tokenizer.chars)
    calls = []
    forward = type(armd.model).forward

    def counted(self, *a, **k):
        calls.append(1)
        return forward(self, *a, **k)

    monkeypatch.setattr(type(armd.model), "forward", counted)
    blob, stats = compress(text.encode(), armd, budget, one_pass=True)
    blocks = -(-len(text) // armd.config.data.seq_len)
    assert len(calls) == blocks  # one pass a block
    assert decompress(blob, armd) == text.encode() and stats.tokens == len(text)
    assert 8 * stats.bytes_out <= stats.model_nll_bits + 64


@pytest.mark.parametrize("budget", [0, 4, 5])
def test_armd_cached_coder_calls_only_the_cache_and_round_trips(armd, budget, monkeypatch):
    text = "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:"
    text = "".join(c for c in text if c in armd.tokenizer.chars)
    cls = type(armd.model)
    full, cached, calls = cls.forward, cls.forward_armd_cached, {"full": 0, "cached": 0}

    def count(name, f):
        def wrapped(self, *a, **k):
            calls[name] += 1
            return f(self, *a, **k)
        return wrapped

    monkeypatch.setattr(cls, "forward", count("full", full))
    monkeypatch.setattr(cls, "forward_armd_cached", count("cached", cached))
    n, L = len(text), armd.config.data.seq_len
    blob, stats = compress(text.encode(), armd, budget)
    steps = sum(min(budget or L, m) for m in [L] * (n // L) + ([n % L] if n % L else []))
    assert calls == {"full": 0, "cached": steps}  # K cached steps a block, no full pass
    assert decompress(blob, armd) == text.encode()
    assert calls == {"full": 0, "cached": 2 * steps}
    one, _ = compress(text.encode(), armd, budget, one_pass=True)
    assert one != blob  # the two codings differ in the file (plan byte), never silently mixed
    assert decompress(one, armd) == text.encode()
    assert 8 * stats.bytes_out <= stats.model_nll_bits + 64


def test_one_pass_is_refused_for_a_denoiser():
    loaded = ardm.load("checkpoints/shakespeare-char")
    with pytest.raises(ArdmError, match="one-pass encoding is for armd"):
        compress(b"To be", loaded, 4, one_pass=True)


def test_bundled_armd_checkpoint_compresses_shakespeare():
    loaded = ardm.load("checkpoints/shakespeare-char-armd")
    text = b"ROMEO:\nBut soft, what light through yonder window breaks?\n"
    blob, stats = compress(text, loaded, 16)
    assert decompress(blob, loaded) == text
    assert stats.model_nll_bits / len(text) < 4.0  # better than gzip's ~4.2 on this text
