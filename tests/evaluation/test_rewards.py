"""Rewards for the gate's policy-gradient stage (ardm.evaluation.rewards), and that stage end to end
through `ardm train-gate --policy-steps` on tiny trained models."""

from __future__ import annotations

import json

import pytest
import torch

from ardm.cli import main
from ardm.core.checkpoint import load, read_checkpoint
from ardm.errors import ArdmError
from ardm.evaluation.metrics import generative_nll, unigram_entropy
from ardm.evaluation.rewards import reference_reward
from ardm.generation.gate.store import GATE_JSON, load_gate


@pytest.fixture(scope="module")
def models(tiny_models):
    return tiny_models


def test_the_reward_is_the_references_loglik_per_token_plus_weighted_entropy(models):
    den, ar = models
    tok = load(den).tokenizer
    tokens = torch.tensor([tok.encode("\nthe cat"), tok.encode("\naaaaaaa")])
    r = reference_reward(str(ar), tok, "\n", entropy_weight=0.5)(tokens)
    ref = load(ar)
    nll = generative_nll(ref.model, ref.tokenizer, ["the cat", "aaaaaaa"], "\n")
    loglik = torch.tensor([-n / c for n, c in nll], dtype=torch.float64)
    entropy = torch.tensor([unigram_entropy(tok.encode(t)) for t in ("the cat", "aaaaaaa")],
                           dtype=torch.float64)
    assert torch.allclose(r["loglik_per_token"], loglik) and torch.allclose(r["entropy"], entropy)
    assert torch.allclose(r["reward"], loglik + 0.5 * entropy) and float(entropy[1]) == 0.0


def test_a_non_causal_reference_is_refused(models):
    den, _ = models
    with pytest.raises(ArdmError, match="not a causal"):
        reference_reward(str(den), load(den).tokenizer, "\n")


def test_train_gate_runs_the_policy_stage_after_the_supervised_one(models, tmp_path, capsys):
    den, ar = models
    common = ["--sampler-steps", "8", "--no-progress", "--device", "cpu", "--reference", str(ar),
              "--policy-steps", "2", "--policy-batch", "4", "--policy-length", "12", "--policy-lr", "0.05"]
    assert main(["train-gate", "--checkpoint", str(den), "--out", str(tmp_path / "g1"), "--steps", "4",
                 "--batch-size", "4", "--eval-interval", "2", *common]) == 0
    assert "policy final" in capsys.readouterr().out
    doc = json.loads((tmp_path / "g1" / GATE_JSON).read_text())
    assert doc["training"]["policy"]["steps"] == 2 and "loglik_per_token" in doc["metrics"]["policy"]["final"]
    lines = (tmp_path / "g1" / "metrics.jsonl").read_text().splitlines()
    stages = [json.loads(line).get("stage") for line in lines]
    assert stages.count("policy") >= 3 and stages[0] is None  # supervised lines first, then the policy's
    # --from-gate: only the policy stage, on an existing gate; its weights move
    assert main(["train-gate", "--checkpoint", str(den), "--from-gate", str(tmp_path / "g1"),
                 "--out", str(tmp_path / "g2"), *common]) == 0
    ckpt = read_checkpoint(den)
    before, after = load_gate(tmp_path / "g1", ckpt).scorer, load_gate(tmp_path / "g2", ckpt).scorer
    pairs = zip(before.state_dict().values(), after.state_dict().values())
    assert any(not torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("argv, needle", [
    (["--policy-steps", "2"], "needs --reference"),
    (["--from-gate", "x"], "add --policy-steps"),
])
def test_policy_flags_without_their_partners_are_one_clear_error(models, argv, needle, capsys):
    den, _ = models
    assert main(["train-gate", "--checkpoint", str(den), *argv]) == 2
    assert needle in capsys.readouterr().err
