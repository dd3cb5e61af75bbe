"""Checkpoints describe themselves, load in one call, and refuse damage with a clear message."""

from __future__ import annotations

import json

import pytest
import torch

import ardm
from ardm.core import checkpoint as ck
from ardm.errors import ArdmError
from ardm.training.loop import train
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    train(tiny_config(steps=4), run, progress=False)
    return run


def _copy(run_dir, tmp_path):
    import shutil

    dst = tmp_path / "c"
    shutil.copytree(ck.resolve(run_dir), dst)
    return dst


def test_load_returns_model_tokenizer_and_config(run_dir):
    loaded = ardm.load(run_dir)
    assert loaded.config.recipe == "demo-char"
    assert loaded.tokenizer.vocab_size == loaded.config.model.vocab_size
    x = torch.tensor([loaded.tokenizer.encode("To be")])
    logits, hidden = loaded.model(x, torch.zeros(x.shape))
    assert logits.shape == (1, 5, loaded.tokenizer.vocab_size)
    meta = loaded.meta
    for key in ("git_commit", "data_sha256", "step", "recipe", "metrics"):
        assert key in meta
    files = json.loads((loaded.path / "config.json").read_text())["files"]
    assert set(files) == {"model.safetensors", "tokenizer.json", "training_state.pt"}


def test_truncated_weights_are_rejected(run_dir, tmp_path):
    c = _copy(run_dir, tmp_path)
    data = (c / "model.safetensors").read_bytes()
    (c / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArdmError, match="truncated"):
        ardm.load(c)


def test_bit_flip_is_rejected(run_dir, tmp_path):
    c = _copy(run_dir, tmp_path)
    data = bytearray((c / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (c / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArdmError, match="sha256"):
        ardm.load(c)


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json"])
def test_missing_file_is_rejected(run_dir, tmp_path, name):
    c = _copy(run_dir, tmp_path)
    (c / name).unlink()
    with pytest.raises(ArdmError, match="missing|not a checkpoint"):
        ardm.load(c)


def test_other_format_version_is_rejected(run_dir, tmp_path):
    c = _copy(run_dir, tmp_path)
    doc = json.loads((c / "config.json").read_text())
    doc["format_version"] = 999
    (c / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ArdmError, match="format version 999"):
        ardm.load(c)


def test_garbled_config_is_rejected(run_dir, tmp_path):
    c = _copy(run_dir, tmp_path)
    (c / "config.json").write_text("{not json")
    with pytest.raises(ArdmError, match="corrupted"):
        ardm.load(c)


def test_weights_that_do_not_match_the_config_are_rejected(run_dir, tmp_path):
    c = _copy(run_dir, tmp_path)
    doc = json.loads((c / "config.json").read_text())
    doc["config"]["model"]["d_model"] = 32  # claims a wider model than the stored tensors
    (c / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ArdmError, match="do not match"):
        ardm.load(c)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ArdmError, match="not found"):
        ardm.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArdmError, match="not a checkpoint"):
        ardm.load(tmp_path / "empty")


def test_failed_save_keeps_the_previous_checkpoint(run_dir, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = ck.read_checkpoint(run)
    loaded = ardm.load(run)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError):
        ck.save_run_checkpoint(run, 999, cfg=loaded.config, weights=loaded.model.state_dict(),
                               tokenizer=loaded.tokenizer, meta={})
    after = ck.read_checkpoint(run)  # verifies every sha256
    assert after.path == before.path
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary debris


def test_fp16_export_halves_the_size_and_keeps_the_outputs(run_dir, tmp_path):
    from ardm.cli import main

    assert main(["export", "--checkpoint", str(run_dir), "--out", str(tmp_path / "e16"), "--fp16"]) == 0
    src, exp = ardm.load(run_dir), ardm.load(tmp_path / "e16")
    size = lambda p: (p / "model.safetensors").stat().st_size  # noqa: E731
    assert size(exp.path) < 0.6 * size(src.path)
    assert "training_state.pt" not in json.loads((exp.path / "config.json").read_text())["files"]
    x = torch.tensor([src.tokenizer.encode("To be or not")])
    t = torch.full(x.shape, 0.5)
    a, _ = src.model(x, t)
    b, _ = exp.model(x, t)
    assert torch.allclose(a, b, atol=5e-2)


def test_equal_weights_give_byte_identical_files_in_every_process(run_dir, tmp_path):
    """Exports of one checkpoint from separate processes are byte-identical (issue 16: metadata
    written in a per-process hash order once gave equal weights different sha256 values)."""
    import subprocess
    import sys

    digests = set()
    for i in range(4):  # hash order is random per process: 4 processes all agreeing is no accident
        out = tmp_path / f"e{i}"
        subprocess.run([sys.executable, "-m", "ardm.cli", "export", "--checkpoint", str(run_dir), "--out",
                        str(out), "--fp16"], check=True, capture_output=True)
        digests.add(json.loads((out / "config.json").read_text())["files"]["model.safetensors"]["sha256"])
    assert len(digests) == 1


def test_an_atomic_write_into_a_missing_folder_names_it_and_writes_nothing(tmp_path):
    target = tmp_path / "no" / "such" / "out.json"
    with pytest.raises(ArdmError, match="folder .*no/such does not exist"):
        ck.atomic_write_text(target, "{}")
    assert not (tmp_path / "no").exists()


def test_checkpoint_files_get_the_umask_mode_not_0600(run_dir, tmp_path):
    """safetensors creates its file 0600; a written checkpoint's files get what open() would give."""
    import os
    import stat

    from ardm.cli import main

    old = os.umask(0o022)
    try:
        assert main(["export", "--checkpoint", str(run_dir), "--out", str(tmp_path / "e")]) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "e").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes
