"""ardm.tasks.sudoku.gate_policy: the gate's long-horizon stage on Sudoku (reward = exact correctness)."""

from __future__ import annotations

import pytest
import torch

from ardm.core.tokenizer import CharTokenizer
from ardm.data.sudoku_puzzles import make_puzzles, write_puzzles
from ardm.errors import ArdmError
from ardm.generation.gate.policy import VAL_SEED, PolicyConfig, RecordingGate, train_policy
from ardm.generation.gate.scoring import LinearGate
from ardm.tasks.sudoku.gate_policy import sudoku_episodes
from ardm.tasks.sudoku.solving import Codec
from tests.tasks.sudoku.test_solving import oracle

TOK = CharTokenizer("\n123456789")


@pytest.fixture(scope="module")
def pairs():
    return make_puzzles(5, 40, seed=21)


def test_rollouts_of_a_group_share_a_puzzle_and_validation_holds_out_the_first(pairs):
    puzzles = [p for p, _ in pairs]
    givens, _ = sudoku_episodes(TOK, puzzles, group=2, held_out=2)
    batch = givens(seed=3, batch=6)
    assert batch.shape == (6, 82)
    assert all(torch.equal(batch[i], batch[i + 1]) for i in (0, 2, 4))
    codec = Codec(TOK)
    held = codec.given(puzzles[:2])
    assert not any(torch.equal(row, h) for row in batch for h in held)  # training never sees them
    assert torch.equal(givens(seed=VAL_SEED, batch=2), held)
    with pytest.raises(ArdmError, match="more than 5 puzzles"):
        sudoku_episodes(TOK, puzzles, group=2, held_out=5)


def test_the_reward_is_one_for_a_solved_grid_and_charges_conflicts_otherwise(pairs):
    _, reward = sudoku_episodes(TOK, [p for p, _ in pairs], group=2, held_out=1)
    codec = Codec(TOK)
    solution = pairs[0][1]
    broken = list(solution)
    broken[0], broken[1] = broken[1], broken[0]  # two cells of row 0 swapped: their columns break
    tokens = torch.tensor([codec.prompt + [codec.ids[d - 1] for d in g] for g in (solution, broken)])
    r = reward(tokens)
    assert r["solved"].tolist() == [1.0, 0.0]
    assert r["reward"][0] == 1.0 and r["reward"][1] < 0 and r["conflict_pairs"][1] > 0


def test_the_policy_stage_runs_on_puzzles_and_reports_the_solve_rate(pairs):
    puzzles, solutions = zip(*pairs)
    givens, reward = sudoku_episodes(TOK, list(puzzles), group=2, held_out=2)
    sampler = RecordingGate(scorer=LinearGate(b0=-1.0), prior=False, mode="remdm", eta=0.3)
    cfg = PolicyConfig(steps=2, batch_size=4, group=2, length=81, sampler_steps=12, val_batch=2,
                       eval_interval=1)
    model = oracle([solutions[i % len(solutions)] for i in range(4)])  # confident, often wrong
    out = train_policy(model, sampler, reward, cfg, torch.tensor(Codec(TOK).prompt), givens=givens,
                       progress=False)
    assert set(out["final"]) >= {"reward", "solved", "conflict_pairs"}
    assert 0.0 <= out["final"]["solved"] <= 1.0


def test_cli_refuses_a_text_reference_and_puzzles_together(tmp_path, pairs, capsys):
    from ardm.cli import main

    write_puzzles(tmp_path / "p.csv", pairs)
    assert main(["train-gate", "--checkpoint", str(tmp_path), "--policy-steps", "1", "--from-gate", "x",
                 "--reference", "r", "--puzzles", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--reference" in err and "--puzzles" in err
