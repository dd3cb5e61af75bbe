"""The learned gate (SPEC §6.8) and gate training (SPEC §7): the MLP gate, the gate file beside its
checkpoint, the §7.3 loss against brute force, frozen statistics, a short real training run, and
`ardm train-gate` / `ardm sample --sampler gate` on the command line."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from ardm.cli import main
from ardm.core.checkpoint import read_checkpoint
from ardm.errors import ArdmError
from ardm.generation.gate.objective import aux_loss, step_loss
from ardm.generation.gate.scoring import GateInputs, LinearGate, MLPGate, SignalStats
from ardm.generation.gate.store import GATE_JSON, find_gate, load_gate, save_gate
from ardm.generation.gate.training import GateTrainConfig, SignalStatsEMA
from ardm.training.loop import train
from tests.conftest import tiny_config

GATE_STEPS = 40
TRAIN_GATE = ["--steps", str(GATE_STEPS), "--batch-size", "8", "--sampler-steps", "8",
              "--eval-interval", "20", "--lr", "0.01", "--no-progress", "--device", "cpu"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    """A tiny bidirectional denoiser trained for 30 steps (the gate is trained beside it)."""
    out = tmp_path_factory.mktemp("denoiser") / "run"
    train(tiny_config(steps=30), out, progress=False)
    return out


@pytest.fixture(scope="module")
def other_denoiser(tmp_path_factory):
    out = tmp_path_factory.mktemp("other") / "run"
    train(tiny_config(steps=2, seed=5), out, progress=False)
    return out


@pytest.fixture(scope="module")
def trained_gate(denoiser):
    """`ardm train-gate` on the tiny denoiser; the gate lands in its checkpoint folder."""
    code = main(["train-gate", "--checkpoint", str(denoiser), *TRAIN_GATE])
    assert code == 0
    return find_gate(read_checkpoint(denoiser))


def inputs(B: int = 2, L: int = 6, d: int = 8, seed: int = 0) -> GateInputs:
    g = torch.Generator().manual_seed(seed)
    return GateInputs(torch.randn(B, L, 3, generator=g), torch.randn(B, L, d, generator=g) * 3,
                      torch.arange(L).float() / L, 0.25, torch.rand(B, L, generator=g))


# ---- the scorers -----------------------------------------------------------------------------------------


def test_mlp_gate_is_a_probability_and_starts_near_its_init():
    torch.manual_seed(0)
    u = MLPGate(d_model=8)(inputs())
    assert u.shape == (2, 6) and ((u > 0) & (u < 1)).all()
    assert (u - 0.02).abs().max() < 0.005  # SPEC §6.8: final bias logit(0.02), small last layer


def test_linear_gate_betas_are_trainable_and_stay_nonnegative():
    gate = LinearGate()
    x = inputs()
    expected = torch.sigmoid(-4.0 + x.signals @ torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(gate(x), expected, atol=1e-6)  # SPEC §6.8 init: b0 = -4, betas = 1
    opt = torch.optim.SGD(gate.parameters(), lr=100.0)
    for _ in range(5):  # push every beta hard towards negative values
        opt.zero_grad()
        gate.betas.sum().backward()
        opt.step()
    assert (gate.betas >= 0).all() and gate.betas.max() < 1.0
    assert LinearGate(b_h=0.0).betas[0] == 0.0
    with pytest.raises(ArdmError, match="must be >= 0"):
        LinearGate(b_m=-1.0)


# ---- the loss (SPEC §7.3) ------------------------------------------------------------------------------


def test_step_loss_is_the_exact_expected_number_of_correct_tokens():
    """Brute force over every overwrite mask m and every fresh draw new ~ q on a 3-token, 3-symbol case."""
    V = 3
    x_star = torch.tensor([0, 1, 2])
    x = torch.tensor([0, 2, 2])  # positions 0 and 2 right, 1 wrong
    q = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    p = torch.tensor([0.3, 0.8, 0.1])
    expected = 0.0
    for m in itertools.product((0, 1), repeat=3):
        pm = math.prod(p[i].item() if m[i] else 1 - p[i].item() for i in range(3))
        for new in itertools.product(range(V), repeat=3):
            pn = math.prod(q[i, new[i]].item() for i in range(3))
            after = [new[i] if m[i] else x[i].item() for i in range(3)]
            expected += pm * pn * sum(a == s for a, s in zip(after, x_star.tolist()))
    q_star = q.gather(-1, x_star[:, None])[:, 0]
    eligible = torch.ones(3, dtype=torch.bool)
    got = step_loss(p[None], q_star[None], (x == x_star)[None], eligible[None])
    assert math.isclose(-got.item() * 3, expected, rel_tol=1e-6)


def test_step_loss_gradient_has_the_sign_spec_states():
    """d L_step / d p_i = -(q_i(x*_i) - [x_i = x*_i]) / |E|: raise p on a wrong token the model can fix,
    lower it on a right token the model is unsure of."""
    p = torch.tensor([[0.5, 0.5, 0.5]], requires_grad=True)
    q_star = torch.tensor([[0.7, 0.4, 0.0]])
    correct = torch.tensor([[False, True, False]])
    step_loss(p, q_star, correct, torch.ones(1, 3, dtype=torch.bool)).backward()
    assert torch.allclose(p.grad, -(q_star - correct.float()) / 3)
    assert p.grad[0, 0] < 0 < p.grad[0, 1] and p.grad[0, 2] == 0


def test_aux_loss_weights_the_rare_wrong_tokens():
    p = torch.full((1, 4), 0.2)
    y = torch.tensor([[True, False, False, False]])
    E = torch.ones(1, 4, dtype=torch.bool)
    bce1, bce0 = -math.log(0.2), -math.log(0.8)
    assert math.isclose(aux_loss(p, y, E).item(), (3 * bce1 + 3 * bce0) / 4, rel_tol=1e-6)  # w = 3/1


def test_normalisation_statistics_freeze_after_the_warmup_fraction():
    cfg = GateTrainConfig(steps=50)
    ema = SignalStatsEMA(cfg.stats_momentum, cfg.warmup_steps)
    assert cfg.warmup_steps == 5  # SPEC §7.5: the first 10% of steps
    g = torch.Generator().manual_seed(0)
    E = torch.ones(4, 8, dtype=torch.bool)
    ema.initialise(torch.randn(4, 8, 3, generator=g), E)
    seen = []
    for step in range(1, 11):
        changed = ema.update(torch.randn(4, 8, 3, generator=g) + step, E)
        seen.append((changed, ema.stats()))
    assert [c for c, _ in seen] == [True] * 5 + [False] * 5
    assert seen[3][1] != seen[4][1] and all(s == seen[4][1] for _, s in seen[5:])


def test_drafts_follow_the_spec_recipe():
    """SPEC §7.2: the decision step comes right after the last rollout step, within 1..K; with
    fill="all" the first rollout step fills every MASK, so the gate decides on a complete draft."""
    from ardm.generation.gate.objective import make_drafts
    from ardm.generation.gate.sampler import GateSampler
    from ardm.generation.gate.scoring import NoGate
    from tests.toy_models import contextual

    model, K = contextual(vocab=5, max_len=12), 8
    x_star = torch.randint(0, 5, (16, 12), generator=torch.Generator().manual_seed(0))
    full_draft = GateSampler(scorer=NoGate(), fill="all")
    d = make_drafts(model, x_star, full_draft, K, 4, 0.05, torch.Generator().manual_seed(1))
    assert ((d.now.k >= 1) & (d.now.k <= K)).all() and torch.equal(d.before.k, (d.now.k - 1).clamp(min=1))
    assert not (d.now.x == 5).any() and torch.equal(d.now.prev_logits, d.before.logits)
    d = make_drafts(model, x_star, GateSampler(scorer=NoGate(), fill="schedule"), K, 1, 0.05,
                    torch.Generator().manual_seed(1))
    assert (d.now.x == 5).any()  # the count rule reveals only some MASKs per step


def test_train_gate_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train-gate", "--help"])
    assert e.value.code == 0 and "--lambda-sparse" in capsys.readouterr().out


# ---- gate files -----------------------------------------------------------------------------------------


def test_gate_file_round_trip_gives_identical_probabilities(denoiser, tmp_path):
    ckpt = read_checkpoint(denoiser)
    torch.manual_seed(1)
    gate = MLPGate(d_model=ckpt.config.model.d_model)
    with torch.no_grad():
        for prm in gate.parameters():
            prm.add_(torch.randn_like(prm))
    stats = SignalStats((1.0, 2.0, 0.0), (4.0, 1.0, 0.5))
    save_gate(tmp_path / "g", gate, stats, {"alpha": 2.0, "fill": "schedule"}, ckpt)
    back = load_gate(tmp_path / "g", ckpt)
    x = inputs(d=ckpt.config.model.d_model)
    assert torch.equal(back.scorer(x), gate(x)) and back.stats == stats
    assert back.options == {"alpha": 2.0, "fill": "schedule"} and back.kind == "mlp"
    doc = json.loads((tmp_path / "g" / GATE_JSON).read_text())
    assert doc["denoiser"]["model_sha256"] == ckpt.files["model.safetensors"]["sha256"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic: no debris


def test_a_gate_for_another_checkpoint_is_refused(trained_gate, other_denoiser, capsys):
    with pytest.raises(ArdmError, match="trained for another denoiser"):
        load_gate(trained_gate, read_checkpoint(other_denoiser))
    code, _, err = run(capsys, "sample", "--checkpoint", str(other_denoiser), "--sampler", "gate",
                       "--steps", "4", "--gate", str(trained_gate), "--no-progress")
    assert code == 2 and "trained for another denoiser" in err


# ---- training ------------------------------------------------------------------------------------------


def test_train_gate_lowers_validation_loss_and_records_everything(trained_gate):
    doc = json.loads((trained_gate / GATE_JSON).read_text())
    first, last = doc["metrics"]["initial"], doc["metrics"]["final"]
    assert last["L_aux"] < 0.9 * first["L_aux"] and last["loss"] < first["loss"]
    assert doc["kind"] == "mlp" and doc["training"]["steps"] == GATE_STEPS
    assert doc["training"]["stats_frozen_at_step"] == math.ceil(0.1 * GATE_STEPS)
    assert len(doc["training"]["data_sha256"]) == 64 and doc["git_commit"]
    lines = [json.loads(s) for s in (trained_gate / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in lines if r["split"] == "val"]
    assert [r["step"] for r in val] == [0, 20, 40]
    assert all(0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 for r in val)
    assert val[-1]["L_aux"] == last["L_aux"]
    chosen = doc["training"]["theta_selected"]  # SPEC §7.5: theta by validation F1, deployed
    assert doc["sampler"]["theta"] == chosen["theta"] and chosen["theta"] in chosen["grid"]
    assert 0 <= chosen["f1"] <= 1


def test_sample_uses_the_trained_gate_and_falls_back_to_linear(trained_gate, denoiser, other_denoiser,
                                                              tmp_path, capsys):
    def gate_probs(ckpt, *extra):
        trace = tmp_path / "t.json"
        code, out, err = run(capsys, "sample", "--checkpoint", str(ckpt), "--sampler", "gate", "--steps", "6",
                             "--num", "2", "--seed", "3", "--no-progress", "--trace", str(trace), *extra)
        assert code == 0, err
        recs = json.loads(trace.read_text())["chunks"][0]["records"]
        return [r["gate"] for r in recs if "gate" in r], err

    learned, err = gate_probs(denoiser)
    assert "trained mlp gate" in err
    linear, err = gate_probs(denoiser, "--set", "gate=linear")
    assert learned != linear and "note" not in err
    assert gate_probs(denoiser, "--gate", str(trained_gate))[0] == learned
    _, err = gate_probs(other_denoiser)
    assert "no trained gate" in err and "linear default gate" in err


@pytest.mark.parametrize("argv, needle", [
    (["--steps", "0"], "steps must be >= 1"),
    (["--batch-size", "0"], "batch-size must be >= 1"),
    (["--kind", "tree"], "gate kind must be one of"),
    (["--mask", "coin"], "--mask must be one of"),
    (["--lambda-sparse", "-1"], "lambda-sparse must be >= 0"),
    (["--set", "fill=everything"], "fill must be one of"),
    (["--set", "b0=1"], "not b0"),
])
def test_train_gate_bad_input_gives_one_clear_line(capsys, denoiser, argv, needle):
    code, _, err = run(capsys, "train-gate", "--checkpoint", str(denoiser), "--no-progress", *argv)
    assert code == 2 and err.startswith("ardm: error: ") and len(err.strip().splitlines()) == 1, err
    assert needle in err


def test_train_gate_refuses_missing_and_causal_checkpoints(capsys, tmp_path):
    code, _, err = run(capsys, "train-gate", "--checkpoint", str(tmp_path / "nope"))
    assert code == 2 and "checkpoint not found" in err
    train(tiny_config("causal", steps=1), tmp_path / "ar", progress=False)
    code, _, err = run(capsys, "train-gate", "--checkpoint", str(tmp_path / "ar"), "--no-progress")
    assert code == 2 and "needs a bidirectional denoiser" in err and len(err.strip().splitlines()) == 1


def test_sample_gate_option_errors(capsys, other_denoiser, tmp_path):
    base = ["sample", "--checkpoint", str(other_denoiser), "--steps", "4", "--no-progress"]
    code, _, err = run(capsys, *base, "--sampler", "mdlm", "--gate", str(tmp_path))
    assert code == 2 and "--gate applies to --sampler gate only" in err
    code, _, err = run(capsys, *base, "--sampler", "gate", "--set", "gate=learned")
    assert code == 2 and "has no trained gate" in err
    code, _, err = run(capsys, *base, "--sampler", "gate", "--gate", str(tmp_path / "none"))
    assert code == 2 and "no gate in" in err


def test_select_theta_maximises_f1_on_a_known_case():
    from ardm.generation.gate.training import select_theta

    # wrong tokens have p 0.7 / 0.8, right ones 0.2 / 0.6: any theta in [0.6, 0.7) separates them
    p = torch.tensor([0.7, 0.8, 0.2, 0.6, 0.99])
    y = torch.tensor([True, True, False, False, True])
    eligible = torch.tensor([True, True, True, True, False])  # the last one is not a decision
    theta, f1 = select_theta(p, y, eligible)
    assert theta == pytest.approx(0.65) and f1 == 1.0
    none = torch.zeros(3, dtype=torch.bool)
    assert select_theta(torch.zeros(3), none, ~none)[1] == 0.0


def test_an_interrupted_gate_run_resumes_exactly(denoiser, tmp_path, monkeypatch):
    """Killed after its step-4 state was saved, `--resume` ends with the same weights as a run
    that was never interrupted; a second fresh start into the same folder is refused."""
    from safetensors.torch import load_file

    import ardm.generation.gate.training as gt

    cfg = GateTrainConfig(steps=8, batch_size=4, sampler_steps=8, eval_interval=4, lr=0.01)
    whole = gt.train_gate(denoiser, cfg, out=tmp_path / "whole", progress=False)
    real_step = gt._train_step

    def dies_at_6(step, *args):
        if step == 6:
            raise KeyboardInterrupt
        return real_step(step, *args)

    monkeypatch.setattr(gt, "_train_step", dies_at_6)
    with pytest.raises(KeyboardInterrupt):
        gt.train_gate(denoiser, cfg, out=tmp_path / "cut", progress=False)
    assert (tmp_path / "cut.partial" / gt.STATE_FILE).exists() and not (tmp_path / "cut").exists()
    monkeypatch.setattr(gt, "_train_step", real_step)
    with pytest.raises(ArdmError, match="already in progress"):
        gt.train_gate(denoiser, cfg, out=tmp_path / "cut", progress=False)
    resumed = gt.train_gate(denoiser, cfg, out=tmp_path / "cut", progress=False, resume=True)
    assert resumed["final"] == whole["final"] and not (tmp_path / "cut.partial").exists()
    a, b = (load_file(tmp_path / d / "gate.safetensors") for d in ("whole", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ArdmError, match="no gate run in progress"):
        gt.train_gate(denoiser, cfg, out=tmp_path / "none", progress=False, resume=True)


def test_the_trained_gate_decides_differently_from_the_prior_only_gate(trained_gate, denoiser):
    """The learned gate must have learned something: on the same states, its overwrite decisions
    (same coins) differ from those of the prior-only gate (u = 0), which is what it starts near."""
    from ardm.core.checkpoint import load_model
    from ardm.generation.gate.options import GateOptions
    from ardm.generation.gate.probability import overwrite_probability
    from ardm.generation.gate.scoring import NoGate
    from ardm.generation.gate.store import load_gate

    ckpt = read_checkpoint(denoiser)
    gate, model = load_gate(trained_gate, ckpt), load_model(ckpt)
    V, K, k = model.cfg.vocab_size, 8, 5
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (16, 16), generator=g)
    x[torch.rand(16, 16, generator=g) < 0.3] = V
    with torch.no_grad():
        logits, hidden = model(x, torch.full((16, 16), 1 - (k - 1) / K))
        kwargs = dict(x=x, logits=logits, prev_logits=None, hidden=hidden, k=torch.full((16,), k), K=K,
                      mask_id=V)
        opts = GateOptions(**gate.options)
        learned = overwrite_probability(gate.scorer, gate.stats, opts, **kwargs).p
        prior_only = overwrite_probability(NoGate(), gate.stats, opts, **kwargs).p
    coin, visible = torch.rand(16, 16, generator=g), x != V
    differ = ((coin < learned) != (coin < prior_only)) & visible
    assert differ.float().mean() > 0.02, "the trained gate decides like the prior-only gate"
