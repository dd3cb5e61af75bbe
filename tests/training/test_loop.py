"""Trainer properties: exact resume, Ctrl-C saves, refusal of unsafe restarts, DDP on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ardm.core.checkpoint import read_checkpoint, read_weights
from ardm.errors import ArdmError
from ardm.training.loop import lr_at, train
from tests.conftest import tiny_config


def _train_losses(run_dir):
    recs = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if r["split"] == "train"}


@pytest.mark.parametrize("objective", ["diffusion", "causal"])
def test_resumed_run_reproduces_the_uninterrupted_curve(tmp_path, objective):
    full, parts = tmp_path / "full", tmp_path / "parts"
    train(tiny_config(objective), full, progress=False)
    result = train(tiny_config(objective), parts, progress=False, stop_after=6)
    assert result["stop_reason"] == "interrupted" and result["step"] == 6
    train(tiny_config(objective), parts, resume=True, progress=False)
    a, b = _train_losses(full), _train_losses(parts)
    assert sorted(a) == sorted(b) == list(range(1, 13))
    assert a == b  # bit-identical losses at every step
    wa, wb = read_weights(read_checkpoint(full)), read_weights(read_checkpoint(parts))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_training_lowers_the_loss(tmp_path):
    cfg = tiny_config("causal", steps=60)
    train(cfg, tmp_path / "r", progress=False)
    losses = _train_losses(tmp_path / "r")
    assert sum(list(losses.values())[-10:]) / 10 < list(losses.values())[0] - 0.5


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    run = tmp_path / "r"
    train(tiny_config(), run, progress=False)
    before = (run / "LATEST").read_text()
    ckpt = read_checkpoint(run)
    with pytest.raises(ArdmError, match="already holds a training run"):
        train(tiny_config(), run, progress=False)
    assert (run / "LATEST").read_text() == before
    read_checkpoint(run)  # still intact (sha256 verified)
    assert read_checkpoint(run).path == ckpt.path


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(ArdmError, match="no checkpoint"):
        train(tiny_config(), tmp_path / "empty", resume=True, progress=False)


def test_resume_with_a_different_config_is_refused(tmp_path):
    run = tmp_path / "r"
    train(tiny_config(), run, progress=False, stop_after=4)
    cfg = tiny_config()
    cfg.train.lr = cfg.train.lr * 2
    with pytest.raises(ArdmError, match="train.lr"):
        train(cfg, run, resume=True, progress=False)
    longer = tiny_config(steps=20)  # run length may change on resume
    assert train(longer, run, resume=True, progress=False)["step"] == 20


def test_lr_schedule_warms_up_then_decays_to_min():
    cfg = tiny_config().train
    cfg.lr, cfg.min_lr, cfg.warmup_steps = 1.0, 0.1, 10
    assert lr_at(0.0, 0, cfg) == pytest.approx(0.1)
    assert lr_at(0.0, 9, cfg) == pytest.approx(1.0)
    assert lr_at(0.5, 50, cfg) == pytest.approx(0.55)
    assert lr_at(1.0, 100, cfg) == pytest.approx(0.1)
    lrs = [lr_at(p / 10, 20, cfg) for p in range(11)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def _cli(*args):
    return [sys.executable, "-m", "ardm.cli", *args]


def _tiny_cli_flags():
    return ["--recipe", "demo-char", "--no-progress", "--batch-size", "4",
            "--set", "model.n_layer=1", "--set", "model.d_model=16", "--set", "model.n_head=2",
            "--set", "model.max_len=16", "--set", "data.seq_len=16", "--set", "train.log_interval=1",
            "--set", "train.warmup_steps=2", "--set", "train.threads=1"]


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.Popen(_cli("train", *_tiny_cli_flags(), "--out", str(run), "--max-steps", "100000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not ((run / "metrics.jsonl").exists()
                                          and len((run / "metrics.jsonl").read_text().splitlines()) > 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    ckpt = read_checkpoint(run)
    step = ckpt.meta["step"]
    assert step >= 3
    res = subprocess.run(_cli("train", *_tiny_cli_flags(), "--out", str(run), "--resume",
                              "--max-steps", str(step + 3)),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert read_checkpoint(run).meta["step"] == step + 3


def test_two_process_torchrun_ends_with_identical_weights(tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ardm.cli", "train", *_tiny_cli_flags(), "--out", str(run), "--max-steps", "8"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    end = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert end["split"] == "end" and end["step"] == 8
    assert len(end["rank_weight_digests"]) == 2 and end["ranks_identical"] is True
    ckpt = read_checkpoint(run)
    assert ckpt.meta["world_size"] == 2
    # both ranks saw different data but one global batch: tokens count both ranks
    assert ckpt.meta["tokens"] == 8 * 4 * 16 * 2


@pytest.mark.parametrize("family", ["flat", "ar_diffusion", "block", "quenched_ar", "sliding"])
@pytest.mark.parametrize("kind", ["absorbing", "uniform", "epsilon_hybrid", "gamma_hybrid", "order_agnostic"])
def test_every_noise_trains_with_every_schedule_family(tmp_path, family, kind):
    cfg = tiny_config(steps=3)
    cfg.noise.kind, cfg.schedule.family = kind, family
    cfg.schedule.block_width, cfg.schedule.steps = 4, 4
    result = train(cfg, tmp_path / "r", progress=False)
    losses = _train_losses(tmp_path / "r")
    assert result["step"] == 3 and len(losses) == 3
    assert all(v == v and abs(v) < 1e6 for v in losses.values())  # finite
    assert result["val_elbo_bits_per_token"] > 0


def test_init_from_starts_a_new_run_from_another_checkpoints_weights(tmp_path):
    base = tmp_path / "base"
    train(tiny_config(), base, progress=False)
    cfg = tiny_config(steps=4, lr=1e-12, min_lr=0.0)  # the weights barely move: compare them
    result = train(cfg, tmp_path / "ft", progress=False, init_from=base, stop_after=2)
    assert result["step"] == 2  # a new run counts from 0
    wa, wb = read_weights(read_checkpoint(base)), read_weights(read_checkpoint(tmp_path / "ft"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    origin = read_checkpoint(tmp_path / "ft").meta["init_from"]
    assert origin["model_sha256"] == read_checkpoint(base).files["model.safetensors"]["sha256"]
    train(cfg, tmp_path / "ft", resume=True, progress=False)  # a resumed run keeps its origin
    assert read_checkpoint(tmp_path / "ft").meta["init_from"] == origin


def test_init_from_a_different_model_is_refused(tmp_path):
    train(tiny_config(), tmp_path / "base", progress=False)
    cfg = tiny_config()
    cfg.model.d_model = 32
    with pytest.raises(ArdmError, match="init-from.*d_model"):
        train(cfg, tmp_path / "ft", progress=False, init_from=tmp_path / "base")
    assert not (tmp_path / "ft" / "LATEST").exists()


def test_init_from_may_change_dropout_but_not_shape(tmp_path):
    """Dropout is a training-time setting, not a weight: a fine-tune may regularise differently."""
    train(tiny_config(), tmp_path / "base", progress=False)
    cfg = tiny_config(steps=2)
    cfg.model.dropout = 0.1
    train(cfg, tmp_path / "ft", progress=False, init_from=tmp_path / "base")
    assert read_checkpoint(tmp_path / "ft").config.model.dropout == 0.1


def test_a_run_from_a_checkpoint_keeps_its_tokenizer(tmp_path):
    """Fine-tuning on other text (e.g. distilled targets) keeps the ids the weights were trained on,
    where a tokenizer built from the new corpus would differ (here: fewer characters)."""
    from ardm.core.checkpoint import load_tokenizer

    train(tiny_config(), tmp_path / "base", progress=False)
    base = read_checkpoint(tmp_path / "base")
    text = open(base.config.data.path, encoding="utf-8").read()
    sub = "".join(ch for ch in text if ch in "abcdefghij \n")
    (tmp_path / "sub.txt").write_text(sub * 3, encoding="utf-8")
    cfg = tiny_config(steps=2)
    cfg.data.path = str(tmp_path / "sub.txt")
    train(cfg, tmp_path / "ft", progress=False, init_from=tmp_path / "base")
    assert load_tokenizer(read_checkpoint(tmp_path / "ft")).to_json() == load_tokenizer(base).to_json()
