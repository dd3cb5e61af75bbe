"""ardm.core.encoder_decoder: the encoder-decoder denoiser (AR-Diffusion's seq2seq setting) has the prefix
denoiser's interface; its source encoding does not depend on the target; the eval-mode reuse of the
encoding is exact; configs, checkpoints and training accept it; and it decodes end to end."""

from __future__ import annotations

import pytest
import torch

import ardm
from ardm.core.config import ModelConfig, RunConfig
from ardm.core.encoder_decoder import EncoderDecoderDenoiser, build_model
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError

P, L, V = 5, 12, 20
DATA = {"source_len": 4, "target_len": 7, "seq_len": 12, "record_len": 12, "tokenizer": "bpe"}


def tiny(encoder_layers: int = 2) -> EncoderDecoderDenoiser:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, n_layer=2, n_head=2, d_model=32, max_len=L,
                      encoder_layers=encoder_layers, encoder_len=P)
    model = build_model(cfg)
    assert isinstance(model, EncoderDecoderDenoiser)
    return model.eval()


def test_build_model_picks_the_class_from_the_config():
    assert type(build_model(ModelConfig(vocab_size=V, max_len=L))) is TransformerDenoiser
    assert type(tiny()) is EncoderDecoderDenoiser


def test_shapes_and_the_source_encoding_ignores_the_target():
    model = tiny()
    x = torch.randint(0, V, (3, L))
    t = torch.cat([torch.zeros(3, P), torch.rand(3, L - P)], 1)
    logits, h = model(x, t)
    assert logits.shape == (3, L, V) and logits.dtype == torch.float32 and h.shape == (3, L, 32)
    y = x.clone()
    y[:, P:] = V  # a fully masked target
    logits2, _ = model(y, t)
    assert torch.equal(logits[:, :P], logits2[:, :P])  # the encoder never sees the target
    assert not torch.allclose(logits[:, P:], logits2[:, P:])


def test_the_target_reads_the_source():
    model = tiny()
    x = torch.randint(0, V, (1, L))
    y = x.clone()
    y[0, 1] = (x[0, 1] + 1) % V
    with torch.no_grad():
        a, _ = model(x, torch.zeros(1))
        b, _ = model(y, torch.zeros(1))
    assert not torch.allclose(a[:, P:], b[:, P:])


def test_reused_encoding_equals_a_fresh_one():
    model = tiny()
    x = torch.randint(0, V, (2, L))
    t = torch.rand(2, L)
    t[:, :P] = 0
    with torch.no_grad():
        first, _ = model(x, t)
        assert model._memo is not None
        z = x.clone()
        z[:, P:] = V
        reused, _ = model(z, t)  # same source: the kept encoding
        model._memo = None
        fresh, _ = model(z, t)
    assert torch.equal(reused, fresh) and not torch.equal(first, reused)


def test_training_mode_keeps_nothing_and_gradients_reach_the_encoder():
    model = tiny().train()
    x = torch.randint(0, V, (2, L))
    logits, _ = model(x, torch.rand(2, L))
    logits[:, P:].logsumexp(-1).sum().backward()
    assert model._memo is None
    assert model.encoder[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.cross[0].kv.weight.grad.abs().sum() > 0


def test_single_stack_passes_are_refused():
    with pytest.raises(ValueError, match="encoder-decoder"):
        tiny().forward_keeping(torch.zeros(1, L, dtype=torch.long), None)


@pytest.mark.parametrize("kwargs, match", [
    (dict(encoder_layers=-1), "encoder_layers must be >= 0"),
    (dict(encoder_layers=2, attention="causal", time_conditioning="none"), "needs model.attention"),
    (dict(encoder_layers=2, shift=True), "no model.shift"),
    (dict(encoder_len=L), "encoder_len must be in"),
])
def test_model_config_refuses(kwargs, match):
    with pytest.raises(ArdmError, match=match):
        ModelConfig(vocab_size=V, max_len=L, **kwargs)


def test_run_config_derives_the_encoder_length_from_the_data():
    cfg = RunConfig.from_dict({"model": {"encoder_layers": 2, "max_len": 12},
                               "data": DATA})
    assert cfg.model.encoder_len == 5
    with pytest.raises(ArdmError, match="must equal data.source_len"):
        RunConfig.from_dict({"model": {"encoder_layers": 2, "encoder_len": 3, "max_len": 12},
                             "data": DATA})
    with pytest.raises(ArdmError, match="needs a parallel corpus"):
        RunConfig.from_dict({"model": {"encoder_layers": 2}})


def test_trains_saves_loads_and_translates(tmp_path):
    from ardm.training.loop import train
    from ardm.training.recipes import _seq2seq
    from tests.tasks.seq2seq.conftest import write_corpus

    data = write_corpus(tmp_path / "data", n_train=100)
    cfg = _seq2seq("toy-encdec", str(data), "src,tgt", 8, 10, 100)
    cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model, cfg.model.encoder_layers = 1, 2, 32, 1
    cfg = RunConfig.from_dict(cfg.to_dict())
    t = cfg.train
    t.max_minutes, t.max_steps, t.batch_size, t.warmup_steps = 0, 4, 8, 1
    t.eval_interval = t.ckpt_interval = 4
    train(cfg, tmp_path / "run", progress=False)
    loaded = ardm.load(tmp_path / "run")
    assert isinstance(loaded.model, EncoderDecoderDenoiser) and loaded.config.model.encoder_len == 9
    from ardm.cli import main
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("cat dog\nred fish\n")
    assert main(["translate", "--checkpoint", str(tmp_path / "run"), "--sampler", "fixed", "--steps", "3",
                 "--mbr", "2", "--input", str(src), "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    samplers = "fixed,mdlm,llada,remdm,edit,gate"  # every sampler of the one loop runs on it
    assert main(["seq2seq", "eval", "--checkpoint", str(tmp_path / "run"), "--data", str(data), "--samplers",
                 samplers, "--nfe", "3", "--mbr", "1", "--num", "3", "--no-progress",
                 "--out", str(tmp_path / "eval")]) == 0
