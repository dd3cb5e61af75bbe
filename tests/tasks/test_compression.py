"""Lossless compression (SPEC §4.5): exact round trips and refusal of wrong or damaged input."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

import ardm
from ardm.errors import ArdmError
from ardm.tasks.compression import compress, decompress
from ardm.training.loop import train
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    run = tmp_path_factory.mktemp("cz") / "run"
    train(tiny_config(steps=20), run, progress=False)
    return ardm.load(run)


def _inputs(tok):
    chars = tok.chars
    rng = random.Random(0)
    return {
        "empty": "",
        "one char": chars[5],
        "long run": "e" * 100,
        "every symbol": "".join(chars),
        "random": "".join(rng.choice(chars) for _ in range(70)),
        "real text": "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:",
    }


@pytest.mark.parametrize("budget", [0, 1, 5])
def test_round_trip_is_exact(ckpt, budget):
    for name, text in _inputs(ckpt.tokenizer).items():
        data = text.encode("utf-8")
        blob, stats = compress(data, ckpt, budget)
        assert decompress(blob, ckpt) == data, name
        assert stats.tokens == len(text)


@pytest.mark.parametrize("budget", [3, 7])
def test_planned_round_trip_is_exact_and_the_plan_travels_in_the_header(ckpt, budget):
    L = ckpt.config.data.seq_len
    losses = [4.0 * 0.8**t for t in range(L)]
    for name, text in _inputs(ckpt.tokenizer).items():  # "real text" ends with a short block
        data = text.encode("utf-8")
        blob, _ = compress(data, ckpt, budget, losses)
        assert decompress(blob, ckpt) == data, name  # the decoder needs no plan file
    equal, _ = compress(data, ckpt, budget)
    assert len(blob) != len(equal) or blob != equal
    with pytest.raises(ArdmError, match="cover 3 positions"):
        compress(data, ckpt, budget, [1.0, 1.0, 1.0])
    damaged = bytearray(blob)
    damaged[len(b"ARDMZ") + 1 + 16 + 5] = 7  # the plan flag (five one-byte varints before it)
    with pytest.raises(ArdmError, match="damaged"):
        decompress(bytes(damaged), ckpt)


def test_payload_is_close_to_the_model_nll(ckpt):
    data = ("Friends, Romans, countrymen, lend me your ears; " * 4).encode()
    blob, stats = compress(data, ckpt, 0)
    assert 8 * stats.bytes_out >= stats.model_nll_bits  # no code beats the model on its own symbols
    assert 8 * stats.bytes_out <= stats.model_nll_bits + 96  # one ANS state for the whole file


def test_wrong_checkpoint_truncation_and_bad_input_are_refused(ckpt, tmp_path):
    blob, _ = compress(b"To be, or not to be", ckpt)
    for cut in (len(blob) - 4, 10, 23):  # the words, the hash, the varint fields
        with pytest.raises(ArdmError, match="truncated"):
            decompress(blob[:cut], ckpt)
    with pytest.raises(ArdmError, match="magic"):
        decompress(b"hello", ckpt)
    other_run = tmp_path / "other"
    train(tiny_config(steps=2), other_run, progress=False)
    with pytest.raises(ArdmError, match="another checkpoint"):
        decompress(blob, ardm.load(other_run))
    with pytest.raises(ArdmError, match="not UTF-8"):
        compress(b"\xff\xfe", ckpt)
    with pytest.raises(ArdmError, match="outside the tokenizer"):
        compress("日本".encode(), ckpt)


def test_cli_round_trip(ckpt, tmp_path, capsys):
    from ardm.cli import main

    src = tmp_path / "in.txt"
    src.write_text("Now is the winter of our discontent", encoding="utf-8")
    run = tmp_path / "ck"
    shutil.copytree(ckpt.path, run)
    assert main(["compress", str(src), str(tmp_path / "c.ardmz"), "--checkpoint", str(run)]) == 0
    assert "bits/char" in capsys.readouterr().out
    back = tmp_path / "back.txt"
    assert main(["decompress", str(tmp_path / "c.ardmz"), str(back), "--checkpoint", str(run)]) == 0
    assert back.read_bytes() == src.read_bytes()
    assert main(["compress", str(tmp_path / "missing"), str(tmp_path / "x"), "--checkpoint", str(run)]) == 2
    capsys.readouterr()
    # a missing output folder is refused before the checkpoint is even read (not after the coding)
    assert main(["compress", str(src), str(tmp_path / "no" / "c.ardmz"), "--checkpoint", "nowhere"]) == 2
    assert "folder" in capsys.readouterr().err
    # a planned budget: `ardm plan --save`, then `ardm compress --plan`
    plan = tmp_path / "plan.json"
    assert main(["plan", "--checkpoint", str(run), "--budget", "4", "--windows", "2",
                 "--save", str(plan)]) == 0
    assert main(["compress", str(src), str(tmp_path / "p.ardmz"), "--checkpoint", str(run), "--budget", "4",
                 "--plan", str(plan)]) == 0
    assert main(["decompress", str(tmp_path / "p.ardmz"), str(back), "--checkpoint", str(run)]) == 0
    assert back.read_bytes() == src.read_bytes()


def test_bundled_order_agnostic_checkpoint_compresses_shakespeare(tmp_path):
    """The bundled order-agnostic model (checkpoints/shakespeare-char-oa) round-trips text it
    did not train on and codes it near its NLL; a planned budget travels in the header."""
    from pathlib import Path

    from ardm.generation.planner import monotone_components

    bundled = ardm.load(Path(__file__).resolve().parents[2] / "checkpoints" / "shakespeare-char-oa")
    assert bundled.config.noise.kind == "order_agnostic"
    data = b"KING RICHARD:\nNow is the winter of our discontent\nMade glorious summer by this sun.\n"
    blob, stats = compress(data, bundled, 8)
    assert decompress(blob, bundled) == data
    assert stats.model_nll_bits / stats.chars < 4.0  # well below log2(65) = 6.0 for a uniform guess
    losses = monotone_components(np.linspace(3.5, 1.0, bundled.config.data.seq_len))
    planned, _ = compress(data, bundled, 8, losses)
    assert decompress(planned, bundled) == data
