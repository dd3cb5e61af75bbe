"""`ardm compare` / `ardm ablate` / `ardm table` end to end on tiny trained models (no ../shared)."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources

import jsonschema
import pytest
import torch

from ardm.cli import main
from ardm.errors import ArdmError
from ardm.evaluation.ablations import ABLATIONS, ablation_specs
from ardm.evaluation.compare import CompareConfig, SamplerSpec, run_compare
from ardm.evaluation.report import best_by_budget, low_entropy, repetitive_run, summary_table

PLOTS = ("quality_vs_nfe.png", "pareto.png", "overwrites_per_step.png", "time_per_revision.png")


def schema() -> dict:
    return json.loads(resources.files("ardm").joinpath("schemas/compare_results.schema.json").read_text())


@pytest.fixture(scope="module")
def models(tiny_models):
    return tiny_models


@pytest.fixture(scope="module")
def compared(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    cfg = CompareConfig(checkpoint=str(models[0]), reference=str(models[1]), nfe=[2, 4], num=3, tokens=4,
                        samplers=["l2r", "fixed", "gate", "remdm", "ar", "argmax-gate=gate:argmax=true"],
                        batch_size=2)
    return run_compare(cfg, out, progress=False), out


@pytest.fixture(scope="module")
def swept(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cfg = CompareConfig(checkpoint=str(models[0]), reference=str(models[1]), nfe=[2, 4], num=4, tokens=4,
                        samplers=["fixed", "gate"], batch_size=4, temperatures=[2.0, 0.5, 1.0, 1.0])
    return run_compare(cfg, out, progress=False), out


def test_a_temperature_sweep_runs_every_spec_at_every_budget_and_temperature(swept, compared):
    results, out = swept
    on_disk = json.loads((out / "results.json").read_text())
    jsonschema.validate(on_disk, schema())
    assert on_disk["config"]["temperatures"] == [0.5, 1.0, 2.0]  # sorted, duplicates dropped
    got = sorted((r["label"], r["nfe_budget"], r["temperature"]) for r in results["runs"])
    assert got == sorted((s, K, T) for s in ("fixed", "gate") for K in (2, 4) for T in (0.5, 1.0, 2.0))
    f = results["frontier"]
    assert f["sweep"] == "temperature" and f["data_entropy"] == results["data"]["entropy"]
    assert {(c["label"], c["nfe_budget"]) for c in f["curves"]} == {(s, K) for s in ("fixed", "gate")
                                                                     for K in (2, 4)}
    for c in f["curves"]:
        assert [p["value"] for p in c["points"]] == [0.5, 1.0, 2.0]
        assert [r["offset"] for r in c["reads"]] == [-0.3, -0.2, -0.1, 0.0]
    assert (out / "frontier.png").stat().st_size > 1000
    assert "## Quality-diversity frontier" in (out / "summary.md").read_text()
    # a sweep's point is the very run a single-temperature compare makes (same seeds, same samples)
    one = {(r["label"], r["nfe_budget"]): r for r in compared[0]["runs"]}
    for r in results["runs"]:
        if r["temperature"] == 1.0 and r["label"] == "fixed":
            single = one[("fixed", r["nfe_budget"])]["samples"]
            assert [s["text"] for s in r["samples"]][:3] == [s["text"] for s in single]


def test_without_a_sweep_results_keep_their_old_keys(compared):
    results, _ = compared
    assert not {"temperatures", "top_ps", "quality_target"} & set(results["config"])
    assert "frontier" not in results and all("top_p" not in r for r in results["runs"])


def test_a_top_p_sweep_and_the_table_of_a_sweep(models, tmp_path, capsys):
    den, ar = models
    assert main(["compare", "--checkpoint", str(den), "--reference", str(ar), "--nfe", "2", "--num", "2",
                 "--tokens", "3", "--samplers", "fixed", "--top-ps", "0.5,1", "--quality-target", "50",
                 "--no-progress", "--out", str(tmp_path / "p")]) == 0
    res = json.loads((tmp_path / "p" / "results.json").read_text())
    jsonschema.validate(res, schema())
    assert [r["top_p"] for r in res["runs"]] == [0.5, 1.0] and res["frontier"]["quality_target"] == 50
    assert "gen-PPL at the data's entropy" in capsys.readouterr().out
    assert main(["table", str(tmp_path / "p" / "results.json")]) == 0
    table = capsys.readouterr().out
    assert "| 2 | fixed top-p=0.5" in table and "gen-PPL at H (data)" in table and "NFE needed" in table


def test_a_killed_compare_resumes_from_its_finished_runs(models, tmp_path, monkeypatch):
    import ardm.evaluation.compare as compare

    cfg = CompareConfig(checkpoint=str(models[0]), reference=str(models[1]), nfe=[2], num=2, tokens=4,
                        samplers=["fixed", "mdlm"], temperatures=[0.5, 1.0])
    real, calls = compare._run, []

    def dies_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args[:2])
        return real(*args, **kwargs)

    monkeypatch.setattr(compare, "_run", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_compare(cfg, tmp_path / "o", progress=False)
    assert not (tmp_path / "o" / "results.json").exists() and (tmp_path / "o" / compare.PARTIAL).exists()
    calls.clear()
    monkeypatch.setattr(compare, "_run", lambda *a, **k: calls.append(a[:2]) or real(*a, **k))
    resumed = run_compare(cfg, tmp_path / "o", progress=False)
    assert len(calls) == 1  # only the fourth run is sampled again
    assert not (tmp_path / "o" / compare.PARTIAL).exists()
    fresh = run_compare(cfg, tmp_path / "fresh", progress=False)
    assert [r["samples"] for r in resumed["runs"]] == [r["samples"] for r in fresh["runs"]]
    # another config into the same folder starts over instead of mixing runs
    (tmp_path / "o" / compare.PARTIAL).write_text('{"config": "other"}\n{"key": "x", "run": {}}\n')
    calls.clear()
    run_compare(cfg, tmp_path / "o", progress=False)
    assert len(calls) == 4


def test_runs_that_repeat_each_other_are_flagged_repetitive():
    base = {"sampler": "edit", "nfe_budget": 8, "nfe": 8, "gen_ppl": 3.0, "gen_ppl_ci": [2.9, 3.1],
            "entropy": 2.0, "entropy_ci": [1.9, 2.1], "distinct_2": 0.04, "overwrites_per_step": 0.0,
            "fraction_revised": 0.0, "focus_thirds": {"early": 0, "middle": 0, "late": 0},
            "s_per_revision": None, "tokens_per_s": None}
    copy = {**base, "label": "copy", "self_bleu": 45.0, "self_bleu_ci": [40.0, 50.0]}
    fresh = {**base, "label": "fresh", "self_bleu": 13.0, "self_bleu_ci": [11.0, 15.0]}
    results = {"config": {"nfe": [8], "entropy_tolerance": 0.1}, "runs": [copy, fresh],
               "data": {"entropy": 2.0, "self_bleu": 12.5, "self_bleu_ci": [11.4, 13.8]}}
    assert repetitive_run(copy, results) and not repetitive_run(fresh, results)
    rows = "\n".join(summary_table(results))
    assert "| 8 | copy (repetitive) |" in rows and "| 8 | fresh |" in rows and "| 45.0 |" in rows


def test_results_validate_against_the_schema_and_carry_provenance(compared):
    results, out = compared
    on_disk = json.loads((out / "results.json").read_text())
    jsonschema.validate(on_disk, schema())
    assert len(on_disk["git_commit"]) in (40, 7) or on_disk["git_commit"] == "unknown"
    assert on_disk["seeds"] == [0, 1, 2]
    assert on_disk["config"]["samplers"][0] == "l2r"
    assert on_disk["checkpoint"]["recipe"] == "demo-char"
    # the bundled corpus is the tiny models' corpus: held-out statistics come with its checksum
    assert len(on_disk["data"]["data_sha256"]) == 64
    if importlib.util.find_spec("sacrebleu"):  # Self-BLEU of every run and of the held-out windows
        assert all(0.0 <= r["self_bleu"] <= 100.0 for r in on_disk["runs"]) and "self_bleu" in on_disk["data"]


def test_every_sampler_runs_at_every_usable_budget(compared):
    results, _ = compared
    runs = {(r["label"], r["nfe_budget"]) for r in results["runs"]}
    for label in ("fixed", "gate", "remdm", "argmax-gate"):
        assert {(label, 2), (label, 4)} <= runs
    # one position per step: l2r / ar only where K = n = 4, and the skip is reported with its reason
    assert ("l2r", 4) in runs and ("ar", 4) in runs and ("l2r", 2) not in runs
    assert any(s["label"] == "l2r" and s["nfe_budget"] == 2 and "exactly" in s["reason"]
               for s in results["skipped"])


def test_same_seeds_and_counts_per_run(compared):
    results, _ = compared
    for r in results["runs"]:
        assert [s["seed"] for s in r["samples"]] == [0, 1, 2]
        assert all(s["gen_tokens"] == 4 for s in r["samples"])  # char model: 4 tokens scored per sample
        assert r["nfe"] >= 1 and r["gen_ppl"] > 0
        if r["sampler"] in ("l2r", "ar", "fixed"):  # these never revise a visible token
            assert r["overwrites_per_sample"] == 0 and r["fraction_revised"] == 0
            assert r["s_per_revision"] is None
        assert sum(map(len, r["overwrites_by_step"] and [r["overwrites_by_step"]])) >= 1


def test_summary_and_plots_are_written(compared):
    results, out = compared
    text = (out / "summary.md").read_text()
    assert "## Best at each budget" in text and "## The gate against `fixed` and `l2r`" in text
    assert "## Headline" in text and "- gate vs fixed:" in text
    assert "- NFE 2: gate gen-PPL" in text
    for name in PLOTS:
        assert (out / name).stat().st_size > 1000
    best = best_by_budget(results)
    for K, r in best.items():
        assert r is None or (r["nfe_budget"] == K and not low_entropy(r, results))


def test_low_entropy_runs_are_flagged_and_never_best():
    run = {"label": "rep", "sampler": "fixed", "nfe_budget": 8, "gen_ppl": 1.0, "entropy": 0.5}
    good = {"label": "ok", "sampler": "gate", "nfe_budget": 8, "gen_ppl": 9.0, "entropy": 2.0}
    results = {"config": {"nfe": [8], "entropy_tolerance": 0.1}, "data": {"entropy": 2.05},
               "runs": [run, good]}
    assert low_entropy(run, results) and not low_entropy(good, results)
    assert best_by_budget(results)[8]["label"] == "ok"
    # without held-out text the AR reference's own samples set the bar
    results = {**results, "data": {"skipped": "no text"},
               "runs": [run, good, {"label": "ar", "sampler": "ar", "nfe_budget": 8, "gen_ppl": 3.0,
                                    "entropy": 2.0}]}
    assert low_entropy(run, results) and best_by_budget(results)[8]["label"] == "ok"  # ar is not ranked


def test_sampler_specs_parse_labels_aliases_and_options():
    s = SamplerSpec.parse("gate-learned")
    assert (s.label, s.name, s.options) == ("gate-learned", "gate", {"gate": "learned"})
    s = SamplerSpec.parse("no entropy=gate-linear:b_h=0")
    assert (s.label, s.name, s.options["b_h"]) == ("no entropy", "gate", 0.0) and s.calibrated
    s = SamplerSpec.parse("remdm:strategy=loop")
    assert (s.label, s.options) == ("remdm:strategy=loop", {"strategy": "loop"})
    s = SamplerSpec.parse("g=gate-learned:path=/x/gate:temperature=1.5")
    assert s.gate_path == "/x/gate" and not s.calibrated and s.temperature == 1.5
    assert "temperature" not in s.options and SamplerSpec.parse("fixed").temperature is None
    with pytest.raises(ArdmError, match="temperature must be a number"):
        SamplerSpec.parse("fixed:temperature=hot")
    with pytest.raises(ArdmError, match="unknown sampler"):
        SamplerSpec.parse("nope")
    with pytest.raises(ArdmError, match="no option"):
        SamplerSpec.parse("fixed:bogus=1")


def test_every_ablation_is_a_valid_spec():
    for spec in ablation_specs():
        SamplerSpec.parse(spec)
    assert len(ablation_specs(["no entropy"], ["x=fixed"])) == 2
    with pytest.raises(ArdmError, match="unknown ablation"):
        ablation_specs(["no such thing"])
    assert all("=" not in k and "," not in k for k in ABLATIONS)


def test_cli_compare_ablate_and_table(models, tmp_path, capsys):
    den, ar = models
    common = ["--checkpoint", str(den), "--reference", str(ar), "--nfe", "2", "--num", "2", "--tokens", "3",
              "--no-progress"]
    before = torch.get_num_threads()
    try:
        assert main(["ablate", *common, "--only", "no entropy,prior only (u 0),u only (no prior)",
                     "--threads", "1", "--out", str(tmp_path / "abl")]) == 0
        assert torch.get_num_threads() == 1  # --threads reaches torch
    finally:
        torch.set_num_threads(before)
    res = json.loads((tmp_path / "abl" / "results.json").read_text())
    assert res["kind"] == "ablate" and [r["label"] for r in res["runs"]] == [
        "no entropy", "prior only (u 0)", "u only (no prior)"]
    jsonschema.validate(res, schema())
    capsys.readouterr()
    assert main(["table", str(tmp_path / "abl" / "results.json")]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| NFE | sampler |") and "| no entropy" in table


@pytest.mark.parametrize("extra, message", [
    (["--samplers", "fixed,nope"], "unknown sampler"),
    (["--samplers", "fixed", "--nfe", "0"], "NFE budgets must be >= 1"),
    (["--samplers", "fixed", "--nfe", "a,b"], "comma-separated integers"),
    (["--samplers", "fixed,fixed"], "labels must be unique"),
    (["--samplers", "fixed", "--tokens", "500"], "exceed the denoiser's context"),
    (["--samplers", "fixed", "--num", "0"], "num must be >= 1"),
    (["--samplers", "fixed,gate-learned", "--nfe", "2", "--tokens", "4"], "no trained gate"),
    (["--samplers", "fixed", "--temperatures", "0.8,-1"], "--temperatures must all be > 0, got -1"),
    (["--samplers", "fixed", "--temperatures", "0,1"], "--temperatures must all be > 0, got 0"),
    (["--samplers", "fixed", "--temperatures", "0.8,hot"], "--temperatures must be comma-separated numbers"),
    (["--samplers", "fixed", "--temperatures", ""], "no temperatures given"),
    (["--samplers", "fixed", "--temperatures", " , "], "no temperatures given"),
    (["--samplers", "fixed", "--temperatures", "nan"], "--temperatures must all be > 0"),
    (["--samplers", "fixed", "--top-ps", "0.9,1.5"], "--top-ps must all be in (0, 1], got 1.5"),
    (["--samplers", "fixed", "--top-ps", "0.9", "--temperatures", "1"], "not both"),
    (["--samplers", "fixed", "--temperatures", "1", "--quality-target", "0"], "quality target"),
    (["--samplers", "fixed", "--threads", "-1"], "--threads must be >= 0"),
    (["--samplers", "fixed,hot=gate:temperature=1.2", "--temperatures", "1"],
     "drop temperature= from ['hot']"),
    # semi-AR blocks no budget can honour fail before the first sampler runs, not after it
    (["--samplers", "fixed,b=mdlm:block=3", "--nfe", "4", "--tokens", "4"], "must divide the length 5"),
    (["--samplers", "fixed,b=mdlm:block=5", "--nfe", "3", "--tokens", "9"],
     "must be a multiple of the number of blocks (2)"),
])
def test_cli_compare_bad_input(models, tmp_path, capsys, extra, message):
    den, ar = models
    code = main(["compare", "--checkpoint", str(den), "--reference", str(ar), "--num", "1", "--no-progress",
                 "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("ardm: error: ")
    assert not (tmp_path / "o").exists()  # nothing written, not even the folder


def test_cli_compare_refuses_swapped_models(models, tmp_path, capsys):
    den, ar = models
    code = main(["compare", "--checkpoint", str(den), "--reference", str(den), "--no-progress",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "not a causal" in capsys.readouterr().err
    code = main(["compare", "--checkpoint", str(ar), "--reference", str(ar), "--no-progress",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "causal model" in capsys.readouterr().err


def test_demo_runs_on_the_bundled_checkpoints(tmp_path, capsys):
    """The bundled denoiser, its learned gate (keyed to the fp16 weights; the default `gate` there) and
    the AR reference load and run through the demo (tiny budgets here; `make demo` runs the full one)."""
    code = main(["demo", "--out", str(tmp_path / "demo"), "--num", "2", "--nfe", "2,4", "--tokens", "4",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "| NFE | sampler |" in out and "report:" in out
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    jsonschema.validate(res, schema())
    assert "frontier" not in res and "temperatures" not in res["config"]  # the demo's format is unchanged
    labels = {r["label"] for r in res["runs"]}
    assert {"l2r", "fixed", "remdm", "acs", "gate", "gate-linear", "ar"} <= labels
    gate = [r["options"] for r in res["runs"] if r["label"] == "gate"]  # default: the bundled trained gate
    assert gate and all(o["gate"] == "learned" and o["mode"] == "remdm" for o in gate)
    assert all(r["options"]["gate"] == "linear" for r in res["runs"] if r["label"] == "gate-linear")
    assert res["checkpoint"]["recipe"] == "shakespeare-char-from-ar"  # the bundled denoiser (issue 16)
    assert res["reference"]["recipe"] == "shakespeare-char-ar"
    assert res["checkpoint"]["validation"]["bits_per_char"] < 3.0


def test_report_html_links_a_viewer_page_of_each_runs_first_sample(compared):
    """Issue 19: report.html beside summary.md, one viewer page per run, every link resolving."""
    import re

    results, out = compared
    page = (out / "report.html").read_text()
    links = re.findall(r'<a href="([^"]+)"', page)
    assert len(links) == len(results["runs"]) and all((out / link).is_file() for link in links)
    assert {r["viewer"] for r in results["runs"]} == set(links)
    assert "data:image/png;base64," in page
