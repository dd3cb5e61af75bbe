"""ardm.evaluation.sweeps: compare sweeps of the same models, data and seeds read as one frontier;
anything that makes them incomparable is refused, naming it."""

from __future__ import annotations

import copy
import json
import math

import pytest

from ardm.cli import main
from ardm.errors import ArdmError
from ardm.evaluation.frontier import build_frontier
from ardm.evaluation.judge import judge_results
from ardm.evaluation.sweeps import merge_sweeps
from tests.evaluation.test_frontier import run, spread
from tests.evaluation.test_judge import fake_nll


def swept(*runs, options=None) -> dict:
    """A swept compare results.json holding these runs (held-out entropy 3.0)."""
    for r in runs:
        r["options"] = options or {"reveal": "random"}
        for s in r["samples"]:
            s["text"] = "aaaa"
    doc = {"kind": "compare", "config": {"prompt": "\n", "seed": 0, "top_k": 0, "top_p": 1.0,
                                         "entropy_tolerance": 0.1},
           "checkpoint": {"path": "d", "step": 10}, "reference": {"path": "r", "step": 5}, "seeds": [0, 1],
           "tokens_per_sample": 10, "prompt_tokens": 1,
           "data": {"data_sha256": "x", "entropy": 3.0, "windows": 4},
           "runs": list(runs)}
    doc["frontier"] = build_frontier(doc, 3.0, "held-out data", "temperature")
    return doc


def cold():
    return swept(run("g", 8, 0.5, spread(2.6, width=0.01), math.log(4)),
                 run("g", 8, 0.7, spread(2.8, width=0.01), math.log(6)))


def warm():
    return swept(run("g", 8, 0.9, spread(2.9, width=0.01), math.log(8)),
                 run("g", 8, 1.1, spread(3.1, width=0.01), math.log(16)))


def reads(doc) -> dict:
    (curve,) = doc["frontier"]["curves"]
    return {round(a["offset"], 1): a for a in curve["reads"]}


def test_a_curve_split_over_two_files_is_read_as_one():
    # H = 3.0; the cold file holds 2.6 and 2.8 nats, the warm one 2.9 and 3.1
    assert reads(cold())[-0.1]["side"] == "below" and reads(warm())[-0.2]["side"] == "above"
    merged = merge_sweeps([cold(), warm()], ["cold", "warm"])
    at = reads(merged)
    assert [r["temperature"] for r in merged["runs"]] == [0.5, 0.7, 0.9, 1.1]
    assert at[-0.3]["gen_ppl"] == pytest.approx(math.sqrt(4 * 6))  # inside the cold file
    assert at[-0.2]["gen_ppl"] == pytest.approx(6.0) and at[-0.1]["gen_ppl"] == pytest.approx(8.0)
    assert at[0.0]["gen_ppl"] == pytest.approx(math.sqrt(8 * 16))
    assert merged["merged_from"] == ["cold", "warm"]


def test_a_point_given_twice_is_kept_once_and_a_label_meaning_two_samplers_is_refused():
    merged = merge_sweeps([cold(), cold()], ["a", "b"])
    assert len(merged["runs"]) == 2
    other = cold()
    for r in other["runs"]:
        r["options"] = {"reveal": "joint"}
    with pytest.raises(ArdmError, match="another sampler configuration"):
        merge_sweeps([cold(), other], ["a", "b"])


@pytest.mark.parametrize("change, named", [
    (lambda d: d["checkpoint"].update(step=11), "denoiser"),
    (lambda d: d.update(seeds=[5, 6]), "seeds"),
    (lambda d: d["data"].update(entropy=3.2), "held-out entropy"),
    (lambda d: d["config"].update(top_p=0.9), "config top_p"),
])
def test_sweeps_of_other_models_data_or_seeds_are_refused_naming_the_difference(change, named):
    other = warm()
    change(other)
    with pytest.raises(ArdmError, match=named):
        merge_sweeps([cold(), other], ["cold", "warm"])


def test_an_unswept_file_or_a_single_file_is_refused():
    plain = copy.deepcopy(cold())
    del plain["frontier"]
    with pytest.raises(ArdmError, match="not a swept"):
        merge_sweeps([cold(), plain], ["a", "b"])
    with pytest.raises(ArdmError, match="two or more"):
        merge_sweeps([cold()], ["a"])


def test_judged_files_merge_their_judge_curves_too():
    docs = [cold(), warm()]
    for d in docs:
        judge_results(d, ["aaaa"] * 4, fake_nll, None, None)
    merged = merge_sweeps(docs, ["cold", "warm"])
    (curve,) = merged["judge"]["frontier"]
    assert {round(a["offset"], 1): a["reached"] for a in curve["reads"]} == {-0.3: True, -0.2: True,
                                                                             -0.1: True, 0.0: True}
    assert len(merged["judge"]["runs"]) == 4
    assert "judge" not in merge_sweeps([cold(), warm()], ["a", "b"])  # unjudged: no judge block


def test_table_frontier_prints_the_merged_read_outs_and_refuses_a_mismatch_with_one_line(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(cold()))
    b.write_text(json.dumps(warm()))
    assert main(["table", "--frontier", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "temperature 0.5, 0.7, 0.9, 1.1" in out and "| 8 | g | 2.600 -> 3.100 |" in out
    other = warm()
    other["seeds"] = [7]
    b.write_text(json.dumps(other))
    assert main(["table", "--frontier", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ardm: error:") and "seeds" in err[0]


def replication(doc: dict, seeds: list[int]) -> dict:
    """The same sweep on other seeds (its samples shifted so that pooling is visible in the reads)."""
    doc = copy.deepcopy(doc)
    doc["seeds"] = seeds
    for r in doc["runs"]:
        for s in r["samples"]:
            s["gen_nll"] += 1.0  # + 0.1 nats per token on every sample
    return doc


def test_replications_on_disjoint_seeds_pool_into_one_larger_sample():
    a, b = cold(), replication(cold(), [2, 3])
    b["runs"].append(warm()["runs"][0])  # a point only the second file has: dropped
    merged = merge_sweeps([a, b], ["a", "b"], pool=True)
    assert merged["seeds"] == [0, 1, 2, 3] and len(merged["runs"]) == 2
    assert all(len(r["samples"]) == 80 for r in merged["runs"])
    # pooled gen-PPL: the mean per-token NLL of both halves, recomputed from the samples
    assert merged["runs"][0]["gen_ppl"] == pytest.approx(math.exp(math.log(4) + 0.05))
    assert merged["pooled"]["dropped"] == ["g NFE 8 temperature 0.9"]
    with pytest.raises(ArdmError, match="disjoint seeds"):
        merge_sweeps([cold(), cold()], ["a", "b"], pool=True)


def test_table_pool_needs_frontier_and_reports_what_it_pooled(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(cold()))
    b.write_text(json.dumps(replication(cold(), [2, 3])))
    assert main(["table", "--pool", str(a), str(b)]) == 2
    assert "use it with --frontier" in capsys.readouterr().err
    assert main(["table", "--frontier", "--pool", str(a), str(b)]) == 0
    assert "Pooled 2 replications (4 seeds)" in capsys.readouterr().out


def test_pooling_merges_files_of_one_seed_set_before_pooling_the_sets():
    peers = swept(run("p", 8, 0.5, spread(2.6, width=0.01), math.log(5)),
                  run("p", 8, 0.7, spread(2.8, width=0.01), math.log(7)))
    later, later_peers = replication(cold(), [2, 3]), replication(peers, [2, 3])
    merged = merge_sweeps([cold(), peers, later, later_peers], ["a", "p", "b", "q"], pool=True)
    assert merged["pooled"]["files"] == ["a + p", "b + q"] and merged["seeds"] == [0, 1, 2, 3]
    assert sorted(r["label"] for r in merged["runs"]) == ["g", "g", "p", "p"]
    assert all(len(r["samples"]) == 80 for r in merged["runs"])
