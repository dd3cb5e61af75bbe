"""The one generation loop: NFE, batching = single runs, prompts, seeds, EOS, trace, validation,
and `ardm sample` end to end on a tiny trained checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from ardm.cli import main
from ardm.errors import ArdmError
from ardm.generation.loop import generate
from ardm.generation.registry import SAMPLERS, Sampler, WriteSet, make_sampler
from ardm.training.loop import train
from tests.conftest import tiny_config
from tests.toy_models import contextual

# every sampler with a step budget it accepts for length 12, prompt 2 (n = 10)
CASES = [("l2r", 10, {}), ("fixed", 6, {"eta": 0.3}), ("mdlm", 6, {}), ("llada", 5, {}),
         ("remdm", 8, {"strategy": "loop", "eta": 0.3}), ("remdm", 8, {"strategy": "conf", "eta": 0.5}),
         ("acs", 6, {"eta": 0.5}), ("edit", 12, {"block_length": 4}),
         ("edit", 12, {"sample": False}), ("gate", 6, {}),
         ("gate", 6, {"fill": "schedule", "mode": "remask", "mask": "threshold", "theta": 0.2}),
         ("ar", 10, {})]
IDS = [f"{name}-{'-'.join(map(str, opts.values())) or 'default'}" for name, _, opts in CASES]
PROMPT = torch.tensor([1, 2])


def toy(name):
    return contextual(attention=SAMPLERS[name].attention)


def gen(model, name, steps, opts, **kw):
    kw = {"length": 12, "prompt": PROMPT, "seed": 0, **kw}
    return generate(model, make_sampler(name, **opts), steps=steps, **kw)


@pytest.mark.parametrize("name, steps, opts", CASES, ids=IDS)
def test_nfe_is_counted_exactly(name, steps, opts):
    model = toy(name)
    g = gen(model, name, steps, opts, batch=3)
    assert g.nfe == len(model.calls)  # one forward over the batch = 1 NFE, the fill pass included
    assert max(g.nfe_per_sample) == g.nfe and g.nfe <= steps + 1


def test_final_fill_pass_counts_one_nfe():
    model = toy("mdlm")
    g = gen(model, "mdlm", 4, {"eps": 0.5})  # t_K = 0.5: MASKs remain after K steps
    assert g.nfe == 5 == len(model.calls) and g.trace is None
    assert (g.tokens < 5).all()


@pytest.mark.parametrize("name, steps, opts", CASES, ids=IDS)
def test_a_batch_equals_single_runs_with_the_same_seeds(name, steps, opts):
    batched = gen(toy(name), name, steps, opts, batch=3, seed=7, eos_id=4)
    for b in range(3):
        single = gen(toy(name), name, steps, opts, batch=1, seed=7 + b, eos_id=4)
        assert torch.equal(batched.tokens[b], single.tokens[0])
        for key in ("nfe_per_sample", "writes", "overwrites_selected", "overwrites_effective", "remasks",
                    "lengths"):
            assert getattr(batched, key)[b] == getattr(single, key)[0], key


@pytest.mark.parametrize("name, steps, opts", CASES, ids=IDS)
def test_the_prompt_is_never_changed_and_same_seed_same_text(name, steps, opts):
    g = gen(toy(name), name, steps, opts, batch=4, seed=3, trace=True)
    assert (g.tokens[:, :2] == PROMPT).all() and (g.tokens < 5).all()
    touched = {e[0] for r in g.trace["records"] for key in ("written", "overwritten", "remasked")
               for row in r[key] for e in row}
    assert min(touched) >= 2
    again = gen(toy(name), name, steps, opts, batch=4, seed=3)
    assert torch.equal(g.tokens, again.tokens)
    other = gen(toy(name), name, steps, opts, batch=4, seed=4)
    deterministic = name == "edit" and opts.get("sample") is False  # argmax candidates: seed-free
    assert torch.equal(g.tokens, other.tokens) == deterministic


def test_the_loop_never_writes_settled_positions_or_finished_rows():
    class Greedy(Sampler):
        """Step 1 writes and settles the first half; later steps try to rewrite everything."""

        name = "greedy"

        def step(self, s):
            first_half = s.target & (s.position < s.n // 2)
            done = torch.tensor([False, s.k >= 2])  # row 1 finishes after step 2
            return WriteSet(torch.ones_like(s.masked), torch.full_like(s.x, s.k % 5),
                            settle=first_half if s.k == 1 else None, done=done)

    g = generate(toy("mdlm"), Greedy(), length=12, steps=4, batch=2, prompt=PROMPT)
    assert g.tokens[:, 2:7].eq(1).all()  # settled at step 1, never rewritten
    assert g.tokens[0, 7:].eq(4).all() and g.tokens[1, 7:].eq(2).all()  # row 1 stopped at step 2
    assert g.nfe_per_sample == [4, 2] and g.nfe == 4


def test_state_keeps_running_change_statistics():
    seen = []

    class Spy(type(make_sampler("gate"))):
        def step(self, s):
            seen.append((s.changes.clone(), s.last_change.clone(), s.x.clone()))
            return super().step(s)

    g = generate(toy("gate"), Spy(b0=0.0), length=12, steps=5, prompt=PROMPT, trace=True)
    changes, last, x = seen[-1]
    recs = g.trace["records"][:-1]  # everything before the last step
    for i in range(12):
        hits = [r["k"] for r in recs for key in ("written", "overwritten", "remasked")
                for e in r[key][0] if e[0] == i]
        assert changes[0, i] == len(hits) and last[0, i] == (max(hits) if hits else 0)
    assert changes[0, :2].eq(0).all() and changes.sum() > 10  # prompt untouched; overwrites happened


def test_trace_is_json_and_counts_match_it():
    g = gen(toy("gate"), "gate", 6, {}, batch=2, trace=True)
    doc = json.loads(json.dumps(g.to_dict()))
    recs = doc["trace"]["records"]
    assert len(recs) == g.nfe and doc["trace"]["prompt_length"] == 2
    for b in range(2):
        assert sum(len(r["written"][b]) for r in recs) == g.writes[b]
        assert sum(r["selected"][b] for r in recs) == g.overwrites_selected[b]
        changed = sum(len(r["overwritten"][b]) + len(r["remasked"][b]) for r in recs)
        assert changed == g.overwrites_effective[b]
        assert all(len(r["gate"][b]) == 10 for r in recs)  # gate probabilities per target position
    assert g.overwrites_effective[0] <= g.overwrites_selected[0]


def test_eos_pads_the_rest_and_stops_left_to_right_samplers_early():
    eos = 3
    g = gen(toy("ar"), "ar", 10, {}, batch=4, seed=1, eos_id=eos, pad_id=0)
    full = gen(toy("ar"), "ar", 10, {}, batch=4, seed=1)
    for b in range(4):
        row, ref = g.tokens[b].tolist(), full.tokens[b].tolist()
        if eos in ref[2:]:
            first = ref.index(eos, 2)
            assert row[: first + 1] == ref[: first + 1] and set(row[first + 1:]) <= {0}
            assert g.lengths[b] == first - 1 and g.nfe_per_sample[b] == first - 1  # stopped at EOS
        else:
            assert row == ref and g.lengths[b] == 10
    assert any(eos in r[2:] for r in full.tokens.tolist())  # the check above has something to check


@pytest.mark.parametrize("kw, needle", [
    ({"length": 40}, "exceeds the model's context"),
    ({"length": 2}, "must be shorter than the length"),
    ({"steps": 0}, "steps must be >= 1"),
    ({"temperature": -1.0}, "temperature"),
    ({"top_p": 0.0}, "top-p"),
    ({"eos_id": 9}, "outside the vocabulary"),
])
def test_bad_generation_arguments_raise_clear_errors(kw, needle):
    args = {"length": 12, "steps": 6, **kw}
    with pytest.raises(ArdmError, match=needle):
        generate(toy("mdlm"), make_sampler("mdlm"), prompt=PROMPT, **args)


@pytest.mark.parametrize("name, steps, needle", [
    ("l2r", 9, "exactly steps = length - prompt length = 10"),
    ("llada", 11, "exceed"),
    ("ar", 10, "needs a causal model"),
])
def test_unusable_step_budgets_and_model_kinds_are_refused(name, steps, needle):
    with pytest.raises(ArdmError, match=needle):
        generate(contextual(), make_sampler(name), length=12, steps=steps, prompt=PROMPT)


def test_diffusion_sampler_on_a_causal_model_is_refused():
    with pytest.raises(ArdmError, match="needs a bidirectional model"):
        generate(contextual(attention="causal"), make_sampler("mdlm"), length=12, steps=4, prompt=PROMPT)


# ---- ardm sample ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    train(tiny_config(steps=4), root / "diffusion", progress=False)
    train(tiny_config("causal", steps=4), root / "ar", progress=False)
    return root


def sample(capsys, *argv):
    code = main(["sample", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("sampler, steps", [("gate", 4), ("l2r", 15), ("llada", 5)])
def test_sample_json(capsys, checkpoints, tmp_path, sampler, steps):
    trace = tmp_path / "trace.json"
    code, out, err = sample(capsys, "--checkpoint", str(checkpoints / "diffusion"), "--sampler", sampler,
                            "--steps", str(steps), "--num", "3", "--batch-size", "2", "--prompt", "T",
                            "--json", "--trace", str(trace))
    assert code == 0, err
    rep = json.loads(out)
    assert rep["sampler"] == sampler and rep["length"] == 16 and len(rep["samples"]) == 3
    for i, smp in enumerate(rep["samples"]):
        assert smp["seed"] == i and smp["text"].startswith("T") and len(smp["text"]) == 16
        assert 1 <= smp["nfe"] <= steps + 1
        assert smp["overwrites"]["effective"] <= smp["overwrites"]["selected"]
    assert rep["wall_time_s"] > 0
    doc = json.loads(trace.read_text())
    assert [c["first_sample"] for c in doc["chunks"]] == [0, 2]
    # batch size does not change the samples (one generator per sequence)
    code, out2, _ = sample(capsys, "--checkpoint", str(checkpoints / "diffusion"), "--sampler", sampler,
                           "--steps", str(steps), "--num", "3", "--batch-size", "3", "--prompt", "T",
                           "--json")
    assert [s["text"] for s in json.loads(out2)["samples"]] == [s["text"] for s in rep["samples"]]


def test_sample_mbr_keeps_one_candidate_per_sample_and_multiplies_nfe(capsys, checkpoints):
    args = ["--checkpoint", str(checkpoints / "diffusion"), "--sampler", "mdlm", "--steps", "4", "--json"]
    code, out, err = sample(capsys, *args, "--num", "6")
    assert code == 0, err
    plain = json.loads(out)["samples"]
    code, out, err = sample(capsys, *args, "--num", "2", "--mbr", "3")
    assert code == 0, err
    chosen = json.loads(out)["samples"]
    assert len(chosen) == 2
    for i, smp in enumerate(chosen):  # sample i's candidates are seeds 3i .. 3i + 2
        group = plain[3 * i: 3 * i + 3]
        assert smp["mbr"]["candidate_seeds"] == [3 * i, 3 * i + 1, 3 * i + 2]
        assert smp["text"] == plain[smp["mbr"]["chosen_seed"]]["text"]
        assert smp["nfe"] == sum(c["nfe"] for c in group)


def test_sample_ar_plain_text(capsys, checkpoints):
    code, out, err = sample(capsys, "--checkpoint", str(checkpoints / "ar"), "--sampler", "ar",
                            "--steps", "11", "--length", "12", "--prompt", "\n")
    assert code == 0, err
    assert "NFE 11" in out


@pytest.mark.parametrize("argv, needles", [
    (["--sampler", "nope", "--steps", "4"], ["unknown sampler 'nope'", "gate", "l2r"]),
    (["--sampler", "mdlm", "--steps", "0"], ["steps must be >= 1"]),
    (["--sampler", "l2r", "--steps", "4"], ["exactly steps", "16"]),
    (["--sampler", "llada", "--steps", "99"], ["steps per block exceed", "steps <= 16"]),
    (["--sampler", "mdlm", "--steps", "4", "--length", "99"], ["exceeds the model's context", "17"]),
    (["--sampler", "mdlm", "--steps", "4", "--length", "4", "--prompt", "Hello"],
     ["shorter than the length"]),
    (["--sampler", "mdlm", "--steps", "4", "--prompt", "日本"], ["outside the tokenizer's vocabulary"]),
    (["--sampler", "ar", "--steps", "4"], ["needs a causal model"]),
    (["--sampler", "gate", "--steps", "4", "--set", "mask=coin"], ["mask must be one of"]),
    (["--sampler", "gate", "--steps", "4", "--set", "speed=3"], ["no option 'speed'"]),
    (["--sampler", "mdlm", "--steps", "4", "--num", "0"], ["--num must be >= 1"]),
    (["--sampler", "mdlm", "--steps", "4", "--mbr", "0"], ["--mbr must be >= 1"]),
])
def test_sample_bad_input_gives_one_clear_line(capsys, checkpoints, argv, needles):
    code, out, err = sample(capsys, "--checkpoint", str(checkpoints / "diffusion"), *argv)
    assert code == 2 and out == ""
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("ardm: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_sample_diffusion_sampler_on_causal_checkpoint(capsys, checkpoints):
    code, _, err = sample(capsys, "--checkpoint", str(checkpoints / "ar"), "--sampler", "gate",
                          "--steps", "4", "--prompt", "\n")
    assert code == 2 and "needs a bidirectional model" in err


def test_sample_help_lists_samplers_and_their_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sample", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "usage: ardm sample" in out
    for name in SAMPLERS:
        assert f"  {name} " in out
    assert "strategy, eta" in out  # remdm's options


GIVEN = torch.tensor([-1, -1, -1, 4, -1, -1, 0, -1, -1, -1, -1, 3])  # fixed ids at positions 3, 6, 11


@pytest.mark.parametrize("name, steps, opts", [c for c in CASES if c[0] != "ar"],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] != "ar"])
def test_given_positions_are_never_changed_and_fed_at_level_zero(name, steps, opts):
    model = toy(name)
    fixed = GIVEN >= 0
    steps = 10 if name == "l2r" else steps  # K = n is what l2r accepts; it stops once no MASK is left
    g = gen(model, name, steps, opts, batch=3, given=GIVEN, trace=True)
    assert torch.equal(g.tokens[:, fixed], GIVEN[fixed].expand(3, -1))
    for _, t in model.calls:
        assert bool((t[:, fixed] == 0).all())
    touched = {e[0] for rec in g.trace["records"] for row in rec["written"] + rec["overwritten"] for e in row}
    assert touched.isdisjoint({3, 6, 11})
    if name == "l2r":  # 7 free target positions: done after 7 steps, not K = 10
        assert g.nfe == 7 and g.writes == [7, 7, 7]


def test_stop_ends_a_row_early_and_its_nfe_stops_counting():
    model = toy("fixed")
    # stop row 0 as soon as position 2 holds a token; row 1 never
    g = gen(model, "mdlm", 8, {}, batch=2, stop=lambda x: torch.tensor([bool(x[0, 2] < 5), False]))
    assert g.nfe_per_sample[1] >= 8 and g.nfe_per_sample[0] < g.nfe_per_sample[1]


@pytest.mark.parametrize("given, message", [
    (torch.full((5,), -1), "given must be"),
    (torch.tensor([-1, -1, 9, -1, -1, -1, -1, -1, -1, -1, -1, -1]), "given ids"),
    (torch.tensor([3, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1]), "after the prompt"),
])
def test_bad_given_is_refused(given, message):
    with pytest.raises(ArdmError, match=message):
        gen(toy("mdlm"), "mdlm", 4, {}, given=given)


@pytest.mark.parametrize("name", ["mdlm", "remdm", "gate"])
def test_clean_prompt_feeds_the_prompt_at_level_zero(name):
    """A seq2seq source (SPEC §11.7) is clean in training: with clean_prompt every pass sees level 0
    there, without it the sampler's own level; the target's levels are the same either way."""
    on, off = toy(name), toy(name)
    gen(on, name, 4, {}, clean_prompt=True)
    gen(off, name, 4, {})
    assert all(bool((t[:, :2] == 0).all()) for _, t in on.calls)
    assert any(bool((t[:, :2] > 0).any()) for _, t in off.calls)
    assert torch.equal(on.calls[0][1][:, 2:], off.calls[0][1][:, 2:])
