"""AR-to-diffusion adaptation (SPEC §11.5): init from a causal checkpoint, shift, annealed attention."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ardm.core.checkpoint import load, read_checkpoint
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError
from ardm.training.adaptation import (
    anneal_mask,
    anneal_ratio,
    grow_depth,
    load_ar_weights,
    set_annealed_attention,
)
from ardm.training.loop import train
from tests.conftest import tiny_config


def _adapted_config(steps: int = 6, anneal: int = 4, time_conditioning: str = "per_token"):
    cfg = tiny_config(steps=steps)
    cfg.noise.kind = "absorbing"
    cfg.model.shift = True
    cfg.model.time_conditioning = time_conditioning
    cfg.train.attn_anneal_steps = anneal
    return cfg


@pytest.fixture(scope="module")
def ar_run(tmp_path_factory):
    """A trained tiny causal model (a few steps, so its weights are not at their init)."""
    out = tmp_path_factory.mktemp("ar") / "run"
    train(tiny_config("causal", steps=8), out, progress=False)
    return out


def _adapted_model(ar_run, time_conditioning="per_token") -> tuple[TransformerDenoiser, torch.nn.Module]:
    cfg = _adapted_config(time_conditioning=time_conditioning)
    ar = load(ar_run)
    cfg.model.vocab_size = ar.config.model.vocab_size
    model = TransformerDenoiser(cfg.model)
    load_ar_weights(ar_run, cfg, ar.tokenizer, model)
    return model.eval(), ar.model


@pytest.mark.parametrize("time_conditioning", ["per_token", "none"])
def test_at_anneal_start_the_adapted_model_gives_the_ar_next_token_logits(ar_run, time_conditioning):
    model, ar = _adapted_model(ar_run, time_conditioning)
    set_annealed_attention(model, step=0, anneal_steps=4, L=16, seed=0)  # ratio 0: causal
    x = torch.randint(0, model.cfg.vocab_size, (3, 16), generator=torch.Generator().manual_seed(0))
    t = torch.rand(3, 16)  # the zero-initialised time MLP must not matter yet
    with torch.no_grad():
        mine, _ = model(x, t)
        theirs, _ = ar(x)
    # shift: position i is predicted from state i - 1, i.e. the AR model's next-token logits
    torch.testing.assert_close(mine[:, 1:], theirs[:, :-1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mine[:, 0], theirs[:, 0], rtol=1e-5, atol=1e-5)  # position 0: own state


def test_after_annealing_attention_is_fully_bidirectional(ar_run):
    model, _ = _adapted_model(ar_run)
    x = torch.randint(0, model.cfg.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[:, -1] = (x[:, -1] + 1) % model.cfg.vocab_size  # change the last token only
    t = torch.full((2, 16), 0.5)

    def first_logits(z):
        with torch.no_grad():
            return model(z, t)[0][:, :8]

    set_annealed_attention(model, step=0, anneal_steps=4, L=16, seed=0)
    assert torch.equal(first_logits(x), first_logits(y))  # causal: the future is invisible
    set_annealed_attention(model, step=4, anneal_steps=4, L=16, seed=0)
    assert model.attn_allow is None  # annealing over: no mask at all
    assert not torch.allclose(first_logits(x), first_logits(y))


def test_anneal_mask_grows_from_causal_to_full():
    causal = torch.ones(64, 64, dtype=torch.bool).tril()
    assert torch.equal(anneal_mask(64, 0.0), causal)
    assert anneal_mask(64, 1.0) is None
    gen = torch.Generator().manual_seed(0)
    shares = [anneal_mask(64, anneal_ratio(s, 10), gen)[~causal].float().mean().item() for s in (2, 5, 8)]
    assert shares[0] < shares[1] < shares[2]
    assert abs(shares[1] - 0.5) < 0.05
    assert all((anneal_mask(64, r, gen) | ~causal).all() for r in (0.3, 0.7))  # causal part always kept


def test_loading_an_ar_checkpoint_of_another_shape_is_refused(ar_run):
    cfg = _adapted_config()
    ar = load(ar_run)
    cfg.model = dataclasses.replace(cfg.model, vocab_size=ar.config.model.vocab_size,
                                    d_model=ar.config.model.d_model * 2)
    with pytest.raises(ArdmError, match="shape differs.*d_model"):
        load_ar_weights(ar_run, cfg, ar.tokenizer, TransformerDenoiser(cfg.model))


def test_a_denoiser_checkpoint_is_not_an_ar_checkpoint(tmp_path):
    train(tiny_config(steps=2), tmp_path / "diff", progress=False)
    cfg = _adapted_config()
    cfg.train.init_from_ar = str(tmp_path / "diff")
    with pytest.raises(ArdmError, match="not a causal"):
        train(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "LATEST").exists()


def test_training_from_an_ar_checkpoint_records_its_origin_and_resumes_exactly(ar_run, tmp_path):
    cfg = _adapted_config(steps=6, anneal=4)
    cfg.train.init_from_ar = str(ar_run)
    full = train(cfg, tmp_path / "full", progress=False)
    cfg2 = _adapted_config(steps=6, anneal=4)
    cfg2.train.init_from_ar = str(ar_run)
    train(cfg2, tmp_path / "parts", progress=False, stop_after=3)
    parts = train(cfg2, tmp_path / "parts", resume=True, progress=False)
    assert full["step"] == parts["step"] == 6
    assert full["val_elbo_bits_per_token"] == parts["val_elbo_bits_per_token"]  # masks redrawn exactly
    origin = read_checkpoint(tmp_path / "full").meta["init_from"]
    assert origin["kind"] == "ar"
    assert origin["model_sha256"] == read_checkpoint(ar_run).files["model.safetensors"]["sha256"]


def test_cli_adapts_with_epsilon_hybrid_noise_and_refuses_a_denoiser(capsys, tmp_path):
    from tests.cli.test_cli import TINY, assert_clear_error, run

    code, _, err = run(capsys, "train", "--recipe", "demo-char-ar", *TINY, "--out", str(tmp_path / "ar"),
                       "--max-steps", "3")
    assert code == 0, err
    code, _, err = run(capsys, "train", "--recipe", "demo-char", *TINY, "--out", str(tmp_path / "d"),
                       "--max-steps", "3", "--init-from-ar", str(tmp_path / "ar"),
                       "--set", "model.shift=true", "--set", "noise.kind=epsilon_hybrid",
                       "--set", "train.attn_anneal_steps=2")
    assert code == 0, err
    assert read_checkpoint(tmp_path / "d").config.model.shift
    code, out, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "d"), "--json", "--draws", "2")
    assert code == 0, err
    code, _, err = run(capsys, "train", "--recipe", "demo-char", *TINY, "--out", str(tmp_path / "e"),
                       "--max-steps", "2", "--init-from-ar", str(tmp_path / "d"))
    assert_clear_error(code, err, "not a causal")
    assert not (tmp_path / "e").exists()


def test_grown_depth_computes_the_same_function_and_places_new_blocks_between_old_ones():
    cfg = dataclasses.replace(tiny_config().model, n_layer=3, vocab_size=11)
    small = TransformerDenoiser(cfg).eval()
    weights = small.state_dict()
    grown = grow_depth(weights, 3, 5)  # src = 0, 0, 1, 1, 2: blocks 1 and 3 are new
    deep = TransformerDenoiser(dataclasses.replace(cfg, n_layer=5)).eval()
    deep.load_state_dict(grown)
    x, t = torch.randint(0, cfg.vocab_size, (2, 12)), torch.rand(2, 12)
    with torch.no_grad():
        assert torch.allclose(small(x, t)[0], deep(x, t)[0], atol=1e-6)  # (logits, hidden)
    assert not grown["blocks.1.mlp.proj.weight"].any() and not grown["blocks.3.attn.proj.weight"].any()
    assert torch.equal(grown["blocks.4.mlp.proj.weight"], weights["blocks.2.mlp.proj.weight"])
    assert torch.equal(grown["blocks.1.attn.qkv.weight"], weights["blocks.0.attn.qkv.weight"])
    with pytest.raises(ArdmError, match="fewer to more"):
        grow_depth(weights, 3, 2)


def test_init_from_a_shallower_checkpoint_grows_it_and_records_the_growth(tmp_path):
    train(tiny_config(steps=2), tmp_path / "small", progress=False)
    cfg = tiny_config(steps=2)
    cfg.model.n_layer = 2
    train(cfg, tmp_path / "deep", progress=False, init_from=tmp_path / "small")
    meta = read_checkpoint(tmp_path / "deep").meta
    assert meta["init_from"]["grown_from_layers"] == 1 and load(tmp_path / "deep").model.cfg.n_layer == 2
    cfg.model.d_model = 32  # width is not grown: one clear refusal
    with pytest.raises(ArdmError, match="d_model"):
        train(cfg, tmp_path / "wide", progress=False, init_from=tmp_path / "small")
