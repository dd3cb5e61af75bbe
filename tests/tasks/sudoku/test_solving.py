"""Sudoku through the generation loop: corpus, conditioned training, solving, selectivity, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ardm.cli import main
from ardm.core.checkpoint import load
from ardm.core.config import DataConfig
from ardm.core.objectives import DiffusionObjective
from ardm.core.tokenizer import CharTokenizer
from ardm.data.sources import load_corpus
from ardm.data.sudoku_corpus import RECORD_LEN, puzzle_grids, solved_grids, sudoku_corpus, transform
from ardm.data.sudoku_puzzles import (
    conflicts,
    count_solutions,
    is_solved,
    make_puzzles,
    minimal_puzzle,
    solve,
    write_puzzles,
)
from ardm.data.tokens import BlockSampler
from ardm.errors import ArdmError
from ardm.generation.registry import make_sampler
from ardm.tasks.sudoku.bench import wilson
from ardm.tasks.sudoku.solving import Codec, selectivity_counts, selectivity_rates, solve_batch
from ardm.training.loop import train
from ardm.training.recipes import get_recipe
from tests.toy_models import ToyModel

TOK = CharTokenizer(list("\n123456789"))


def test_corpus_grids_are_valid_deterministic_and_split_by_records():
    grids = solved_grids(60, seed=3)
    assert all(is_solved(tuple(g)) for g in grids.tolist())
    assert np.array_equal(grids, solved_grids(60, seed=3)) and not np.array_equal(grids, solved_grids(60, 4))
    c = sudoku_corpus("sudoku:50:1", 0.1)
    assert len(c.train) == 45 * RECORD_LEN and len(c.val) == 5 * RECORD_LEN
    assert c.train[0] == "\n" and c.val[0] == "\n" and len(c.sha256) == 64
    assert load_corpus(DataConfig(path="sudoku:50:1", seq_len=82)).sha256 == c.sha256
    for bad in ("sudoku:", "sudoku:x", "sudoku:5", "sudoku:50:1:2"):
        with pytest.raises(ArdmError, match="sudoku:N"):
            sudoku_corpus(bad, 0.1)


def test_puzzle_corpus_marks_the_givens_of_a_unique_puzzle_of_every_record():
    c = sudoku_corpus("sudoku-puzzles:24:2", 0.25)
    text, clean = c.train + c.val, np.concatenate([c.train_clean, c.val_clean])
    assert len(c.train_clean) == len(c.train) == 18 * RECORD_LEN and len(c.val_clean) == len(c.val)
    for r in range(24):
        rec, mask = text[r * RECORD_LEN:(r + 1) * RECORD_LEN], clean[r * RECORD_LEN:(r + 1) * RECORD_LEN]
        assert rec[0] == "\n" and mask[0]  # the prompt is clean too
        solution = tuple(int(ch) for ch in rec[1:])
        puzzle = tuple(d if m else 0 for d, m in zip(solution, mask[1:]))
        assert is_solved(solution) and count_solutions(puzzle) == 1 and 17 <= sum(mask[1:]) <= 40
    again = sudoku_corpus("sudoku-puzzles:24:2", 0.25)
    assert again.sha256 == c.sha256 and np.array_equal(again.train_clean, c.train_clean)
    assert c.sha256 != sudoku_corpus("sudoku:24:2", 0.25).sha256
    with pytest.raises(ArdmError, match="sudoku-puzzles:N"):
        sudoku_corpus("sudoku-puzzles:x", 0.1)


def test_symmetries_keep_a_puzzle_the_unique_puzzle_of_its_solution():
    import random

    rng = random.Random(0)
    solution = solved_grids(1, seed=0)[0]
    puzzle = np.array(minimal_puzzle(tuple(solution.tolist()), rng))
    assert count_solutions(tuple(puzzle.tolist())) == 1
    sol, puz = transform(np.stack([solution] * 8).reshape(8, 9, 9), np.random.default_rng(1),
                         np.stack([puzzle] * 8).reshape(8, 9, 9))
    sol, puz = sol.reshape(8, 81), puz.reshape(8, 81)
    assert len({tuple(r) for r in sol.tolist()}) > 1  # the symmetries differ per row
    for s_row, p_row in zip(sol.tolist(), puz.tolist()):
        assert is_solved(tuple(s_row)) and solve(tuple(p_row)) == [tuple(s_row)]
        assert all(p in (0, s) for p, s in zip(p_row, s_row))
    sols, puzs = puzzle_grids(3, seed=4)
    assert all(solve(tuple(p)) == [tuple(s)] for s, p in zip(sols.tolist(), puzs.tolist()))


def test_block_sampler_returns_the_clean_mask_of_each_window():
    ids = torch.arange(6 * RECORD_LEN)
    clean = ids % 3 == 0
    x, given = BlockSampler(ids, RECORD_LEN, seed=0, stride=RECORD_LEN, clean=clean).batch_with_clean(16)
    assert torch.equal(given, x % 3 == 0)
    assert BlockSampler(ids, RECORD_LEN, seed=0).batch_with_clean(4)[1] is None


def test_given_positions_are_always_clean_and_the_count_reaches_clean_max():
    cfg = get_recipe("sudoku")
    cfg.model.vocab_size = 10
    obj = DiffusionObjective(cfg)
    given = torch.zeros(512, 82, dtype=torch.bool)
    given[:, :25] = True
    given[:256, :70] = True  # more givens than clean_max: exactly those stay clean
    clean = obj.clean_positions(512, 82, torch.Generator().manual_seed(0), given)
    assert bool(clean[given].all())
    counts = clean.sum(1)
    assert int(counts[256:].min()) == 25 and int(counts[256:].max()) == 60  # U{25..60}
    assert bool((counts[:256] == 70).all())


def test_block_sampler_stride_starts_windows_at_record_boundaries():
    ids = torch.arange(10 * RECORD_LEN)
    windows = BlockSampler(ids, RECORD_LEN, seed=0, stride=RECORD_LEN).batch(64)
    assert bool((windows[:, 0] % RECORD_LEN == 0).all())


def test_clean_positions_stay_clean_get_level_zero_and_no_loss():
    cfg = get_recipe("sudoku")
    cfg.model.vocab_size = 10
    obj = DiffusionObjective(cfg)
    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(10))

        def forward(self, z, t):
            seen["z"], seen["t"] = z, t
            return self.w.expand(*z.shape, 10), None

    gen = torch.Generator().manual_seed(0)
    clean = obj.clean_positions(256, 82, torch.Generator().manual_seed(0))
    counts = clean.sum(1)
    assert int(counts.min()) >= 17 and int(counts.max()) <= 60
    x = torch.randint(0, 10, (256, 82))
    loss, _ = obj.loss(Spy(), x, gen)
    clean = seen["t"] == 0  # other positions get levels >= t_min > 0
    assert torch.isfinite(loss)
    assert 17 <= int(clean.sum(1).min()) and int(clean.sum(1).max()) <= 60
    assert bool((seen["z"][clean] == x[clean]).all()) and bool((seen["z"] != x).any())
    loss.backward()


def oracle(solutions, sure: float = 8.0):
    """Bidirectional toy: at every cell, the solution's digit is `sure` nats more likely."""
    ids = torch.tensor([[0] + list(s) for s in solutions])  # char ids of digits 1..9 are 1..9

    def fn(tokens, call):
        logits = torch.zeros(*tokens.shape, 10)
        logits.scatter_(-1, ids[: tokens.shape[0], :, None], sure)
        return logits

    return ToyModel(fn, vocab=10, max_len=82)


@pytest.fixture(scope="module")
def pairs():
    return make_puzzles(4, 40, seed=5)


@pytest.mark.parametrize("name", ["mdlm", "gate", "gate:fill=all", "fixed", "remdm", "l2r"])
def test_a_confident_model_solves_with_every_sampler_and_stops_early(pairs, name):
    puzzles, solutions = zip(*pairs)
    steps = 81
    sampler = make_sampler("gate", fill="all") if name == "gate:fill=all" else make_sampler(name)
    attempts, _ = solve_batch(oracle(solutions), TOK, sampler, puzzles, steps, temperature=0.0)
    assert all(a.solved and a.violations == 0 for a in attempts)
    if name == "l2r":  # one blank per step: exactly the number of blanks
        assert [a.nfe for a in attempts] == [sum(c == 0 for c in p) for p in puzzles]
    elif name == "gate:fill=all":  # drafts every cell at step 1; the verifier accepts it there
        assert [a.nfe for a in attempts] == [1] * len(puzzles)
    else:  # the schedule reveals the last blank at the last step at the latest
        assert all(a.nfe <= steps for a in attempts)


@pytest.mark.parametrize("name", ["llada", "gate", "remdm"])
def test_the_newline_and_the_givens_are_fed_clean_at_every_step(pairs, name):
    # the puzzle corpus keeps the record's newline clean in training, like the givens: feeding it at
    # the sampler's level cost `llada` 23 of 160 selection puzzles (docs/results-sudoku.md)
    puzzles, solutions = zip(*pairs)
    model = oracle(solutions, sure=1.0)
    solve_batch(model, TOK, make_sampler(name), puzzles, 81, temperature=0.0, stop_early=False)
    given = torch.tensor([[True] + [d > 0 for d in p] for p in puzzles])
    assert len(model.calls) >= 2
    for _, t in model.calls:
        assert bool((t[given] == 0).all()) and bool((t[~given] > 0).any())


def test_codec_validity_check_matches_the_rules(pairs):
    codec = Codec(TOK)
    _, solution = pairs[0]
    x = torch.tensor([[0] + list(solution)])
    assert codec.valid(x).tolist() == [True]
    y = x.clone()
    y[0, 5] = y[0, 6]  # a duplicate in row 0
    z = x.clone()
    z[0, 10] = 10  # MASK
    assert codec.valid(torch.cat([y, z])).tolist() == [False, False]


def test_selectivity_of_a_known_trace(pairs):
    puzzle, solution = pairs[0]
    blanks = [c for c, d in enumerate(puzzle) if d == 0]
    a, b = blanks[:2]
    wrong_a = solution[a] % 9 + 1
    # step 1 writes a wrong digit at a and the right one at b; step 2 fixes a (helpful, a was in
    # conflict iff the wrong digit clashes) and breaks b (harmful)
    recs = [{"written": [[[1 + a, wrong_a], [1 + b, solution[b]]]], "overwritten": [[]], "remasked": [[]]},
            {"written": [[]], "overwritten": [[[1 + a, wrong_a, solution[a]], [1 + b, solution[b], wrong_a]]],
             "remasked": [[]]}]
    # step 3 remasks b (holding the wrong digit now) and a (right again): one wrong digit removed of two
    recs.append({"written": [[]], "overwritten": [[]],
                 "remasked": [[[1 + b, wrong_a], [1 + a, solution[a]]]]})
    s = selectivity_rates(selectivity_counts({"prompt_length": 1, "records": recs}, Codec(TOK), [puzzle],
                                             [solution]))
    assert (s["overwrites"], s["helpful"], s["harmful"], s["neutral"]) == (2, 1, 1, 0)
    assert s["precision"] == 0.5
    assert (s["remasks"], s["remasks_wrong"], s["remask_precision"]) == (2, 1, 0.5)
    # chance level: before step 1 nothing is written; before steps 2 and 3 both a and b are
    before = [{**dict(enumerate(puzzle)), a: wrong_a, b: solution[b]},
              {**dict(enumerate(puzzle)), a: solution[a], b: wrong_a}]
    hits = sum(len({a, b} & conflicts([g[c] for c in range(81)])) for g in before)
    assert (s["open_cells"], s["open_in_conflict"]) == (4, hits) and s["conflict_base_rate"] == hits / 4


def test_wilson_interval():
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(50, 100)
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert wilson(100, 100)[1] == pytest.approx(1.0) and wilson(100, 100)[0] > 0.95
    for n in range(1, 201):  # the interval contains k / n (a 100% rate once crashed the plot's error bars)
        for k in (0, 1, n - 1, n):
            lo, hi = wilson(k, n)
            assert lo <= k / n <= hi


@pytest.fixture(scope="module")
def tiny_sudoku(tmp_path_factory):
    root = tmp_path_factory.mktemp("sudoku")
    for recipe in ("sudoku", "sudoku-ar"):
        cfg = get_recipe(recipe)
        cfg.data.path = "sudoku:40"
        cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model = 1, 2, 16
        t = cfg.train
        t.batch_size, t.max_steps, t.warmup_steps = 4, 3, 1
        t.eval_interval, t.ckpt_interval, t.eval_batches = 100, 3, 1
        train(cfg, root / recipe, progress=False)
    return root


def test_cli_solve_reports_bad_lines_and_solves_the_rest(tiny_sudoku, tmp_path, capsys, pairs):
    good = "".join(str(d) for d in pairs[0][0])
    lines = ["puzzle,solution", good, good[:80], good[:40] + "x" + good[41:], good.replace("0", ".")]
    f = tmp_path / "p.txt"
    f.write_text("\n".join(lines) + "\n")
    code = main(["sudoku", "solve", "--checkpoint", str(tiny_sudoku / "sudoku"), "--puzzles", str(f),
                 "--sampler", "gate", "--nfe", "4", "--json"])
    out = capsys.readouterr()
    assert code == 0
    res = json.loads(out.out)
    assert res["puzzles"] == 2 and res["bad_lines"] == [3, 4]
    assert f"{f}:3:" in out.err and f"{f}:4:" in out.err
    assert [a["line"] for a in res["attempts"]] == [2, 5]


def test_cli_bench_writes_results_plot_and_summary(tiny_sudoku, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["sudoku", "bench", "--checkpoint", str(tiny_sudoku / "sudoku"),
                 "--ar", str(tiny_sudoku / "sudoku-ar"), "--samplers", "mdlm,gate,l2r,remdm", "--nfe", "4,81",
                 "--sets", "easy", "--num", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    runs = {(r["label"], r["nfe_budget"]) for r in res["runs"]}
    assert {("mdlm", 4), ("gate", 81), ("l2r", 81), ("ar", 81)} <= runs and ("l2r", 4) not in runs
    assert all(0 <= r["solve_rate"] <= 1 and len(r["attempts"]) == 2 for r in res["runs"])
    assert (out / "solve_rate.png").stat().st_size > 1000 and (out / "puzzles-easy.csv").exists()
    summary = (out / "summary.md").read_text()
    assert "| easy | 4 | mdlm |" in summary
    remdm = next(r for r in res["runs"] if r["label"] == "remdm" and r["nfe_budget"] == 81)["selectivity"]
    assert remdm["overwrites"] == 0 and remdm["remasks"] >= 0 and "remask_precision" in remdm
    main_table = summary.split("| set | NFE budget | sampler | solve rate")[1].split("\n\n")[0]
    rows = [line for line in main_table.splitlines() if line.startswith("| easy |")]
    assert rows and all(line.count("|") == rows[0].count("|") for line in rows)  # every row has all columns
    assert "| easy | 81 | gate |" in summary.split("naked and hidden singles alone")[1]  # by logic too
    capsys.readouterr()
    assert main(["table", str(out / "results.json")]) == 0  # the README's table, regenerated by a command
    printed = capsys.readouterr().out
    assert "| easy | 4 | mdlm |" in printed and printed.strip() in summary
    eval_json = tmp_path / "eval.json"
    eval_json.write_text(json.dumps({"bits_per_char": 1.0}))
    assert main(["table", str(out / "results.json"), str(eval_json)]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["generate", "--num", "0", "--out", "x"], "--num"),
    (["generate", "--givens", "a-b", "--out", "x"], "--givens"),
    (["generate", "--givens", "10", "--out", "x"], "17"),
])
def test_cli_sudoku_bad_input(args, message, capsys):
    assert main(["sudoku", *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_solve_refuses_a_file_without_valid_puzzles(tiny_sudoku, tmp_path, capsys):
    f = tmp_path / "bad.txt"
    f.write_text("123\n")
    assert main(["sudoku", "solve", "--checkpoint", str(tiny_sudoku / "sudoku"), "--puzzles", str(f)]) == 2
    err = capsys.readouterr().err
    assert ":1:" in err and "no valid puzzle" in err
    write_puzzles(tmp_path / "ok.csv", make_puzzles(1, 40, seed=1))
    assert main(["sudoku", "solve", "--checkpoint", str(tiny_sudoku / "sudoku"), "--puzzles",
                 str(tmp_path / "ok.csv"), "--nfe", "0"]) == 2


@pytest.mark.parametrize("recipe", ["sudoku", "sudoku-ar"])
def test_eval_scores_whole_records(tiny_sudoku, capsys, recipe):
    """Windows start at record boundaries: one per held-out grid, 81 cells scored by the AR twin
    (its "\\n" is context) and all 82 positions by the denoiser."""
    assert main(["eval", "--checkpoint", str(tiny_sudoku / recipe), "--json", "--draws", "1"]) == 0
    rep = json.loads(capsys.readouterr().out)
    records = len(sudoku_corpus("sudoku:40", 0.02).val) // RECORD_LEN
    assert rep["windows"] == records
    assert rep["tokens"] == records * (81 if recipe == "sudoku-ar" else 82)


def test_selectivity_counts_add_up_across_batches(tiny_sudoku, pairs):
    """The bench sums per-batch counts: batches of 1 give the same totals and rates as one batch."""
    from ardm.core.checkpoint import load
    from ardm.generation.specs import SamplerSpec
    from ardm.tasks.sudoku.bench import BenchConfig, attempt_all

    loaded = load(tiny_sudoku / "sudoku")
    spec = SamplerSpec.parse("gate")
    whole = attempt_all(loaded, spec, pairs, 4, BenchConfig(checkpoint="x", batch_size=4), trace=True)
    split = attempt_all(loaded, spec, pairs, 4, BenchConfig(checkpoint="x", batch_size=1), trace=True)
    assert whole[0] == split[0] and whole[1] == split[1]  # per-row seeds: the batch size changes nothing
    assert whole[1]["grid_steps"] == 4 * len(pairs) and "conflict_cells_per_step" in whole[1]


def test_the_solving_module_does_not_shadow_the_exact_solver():
    """`ardm.tasks.sudoku.solve` is the exact solver; importing the denoiser-solving module (as this file
    does) must not replace it with a submodule of the same name (it once did, so test order mattered)."""
    import ardm.tasks.sudoku
    from ardm.data import sudoku_puzzles as puzzles

    assert ardm.tasks.sudoku.solve is puzzles.solve


def test_a_puzzle_corpus_with_a_subword_tokenizer_is_refused():
    from ardm.training.run import clean_masks as _clean_masks

    c = sudoku_corpus("sudoku-puzzles:20", 0.1)
    ids = torch.zeros(len(c.train) // 2, dtype=torch.long)  # fewer tokens than characters, as BPE gives
    with pytest.raises(ArdmError, match="data.tokenizer=char"):
        _clean_masks(c, ids, torch.zeros(len(c.val), dtype=torch.long))
    train_clean, _ = _clean_masks(c, torch.zeros(len(c.train)), torch.zeros(len(c.val)))
    assert train_clean.dtype == torch.bool and len(train_clean) == len(c.train)


@pytest.mark.parametrize("name", ["sudoku-puzzles"])
def test_bundled_denoisers_solve_easy_puzzles_in_confidence_order(name):
    from pathlib import Path

    from ardm.core.checkpoint import load

    loaded = load(Path(__file__).resolve().parents[3] / "checkpoints" / name)
    puzzles = [p for p, _ in make_puzzles(6, 45, seed=11)]
    sampler = make_sampler("llada")
    attempts, _ = solve_batch(loaded.model, loaded.tokenizer, sampler, puzzles, 81, temperature=0.0)
    assert sum(a.solved for a in attempts) >= 5


def test_loop_options_of_a_spec_reach_the_loop(pairs):
    puzzles, solutions = zip(*pairs)
    attempts, _ = solve_batch(oracle(solutions), TOK, make_sampler("llada"), puzzles, 80, temperature=0.0,
                              loop={"block_size": 41})  # semi-AR halves of "\n" + 81 cells
    assert all(a.solved for a in attempts)
    with pytest.raises(ArdmError, match="exact KV cache"):
        solve_batch(oracle(solutions), TOK, make_sampler("llada"), puzzles, 80, loop={"cache": "exact"})


def test_a_sudoku_model_fine_tunes_into_peer_heads_and_solves(tiny_sudoku, tmp_path, pairs):
    """--init-from may restrict heads to the constraint graph (model.peer_heads: a mask, same weights);
    the fine-tuned model keeps it in its config and solves through the same loop."""
    cfg = get_recipe("sudoku")
    cfg.data.path = "sudoku:40"
    cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model, cfg.model.peer_heads = 1, 2, 16, 1
    t = cfg.train
    t.batch_size, t.max_steps, t.warmup_steps = 4, 2, 1
    t.eval_interval, t.ckpt_interval, t.eval_batches = 100, 2, 1
    train(cfg, tmp_path / "peer", progress=False, init_from=tiny_sudoku / "sudoku")
    loaded = load(tmp_path / "peer")
    assert loaded.model.cfg.peer_heads == 1 and loaded.model.peer_mask is not None
    puzzle, _ = pairs[0]
    (attempt,), _ = solve_batch(loaded.model, loaded.tokenizer, make_sampler("llada"), [puzzle], 81)
    assert all(g == p for g, p in zip(attempt.grid, puzzle) if p)  # the givens are kept
