"""Several compare sweeps read as one frontier (SPEC §11.4): `ardm table --frontier A B ...`.

A frontier often grows run by run: a cold sweep after a warm one, a new sampler after the peers.
Read separately, a curve whose points sit in two files is read in pieces (H-0.3 from one sweep,
H from the other); merged, it is one curve with one bootstrap. Merging is only meaningful when the
runs share everything but the sampler and the swept value: the same denoiser and reference (path,
step, validation figure), the same held-out windows, prompt, seeds and sample length, the same sweep
kind, and the same fixed token options. Anything else is refused with the field that differs.

Pooling (`--pool`): replications of one protocol on *disjoint* seeds (e.g. seeds 0..99, then
1000..1199) are read as one larger sample: the runs at the same (sampler, NFE, swept value) in every
file get their samples concatenated (file order, so sample j still shares its seed across runs and
the paired bootstrap stays paired), their point statistics are recomputed, and points missing from
any file are dropped (named in "pooled"). The held-out statistics (H, Self-BLEU) are the first file's.
Files with the very same seeds (e.g. two samplers run apart) are first merged as without --pool, then
the seed groups are pooled.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ardm.errors import ArdmError
from ardm.evaluation.frontier import build_frontier
from ardm.evaluation.judge import bpc_stats, judge_frontier
from ardm.evaluation.metrics import bootstrap_ci, perplexity, ppl_ci, self_bleu_stats

# what every merged sweep must share: (where in results.json, how it is named in an error)
SHARED = (("checkpoint", "denoiser"), ("reference", "reference model"), ("seeds", "seeds"),
          ("tokens_per_sample", "sample length"), ("prompt_tokens", "prompt"))
SHARED_CONFIG = ("prompt", "top_k", "entropy_tolerance")
SHARED_DATA = ("data_sha256", "entropy", "windows")


def _sweep(doc: dict, name: str) -> str:
    f = doc.get("frontier")
    if doc.get("kind") != "compare" or not isinstance(f, dict) or "sweep" not in f:
        raise ArdmError(f"{name} is not a swept `ardm compare` results.json (run compare with "
                        "--temperatures or --top-ps)")
    return f["sweep"]


def _fixed_option(sweep: str) -> str:
    """The sampling option a sweep holds fixed (it must match across the merged files)."""
    return "top_p" if sweep == "temperature" else "temperature"


def _check_shared(docs: list[dict], names: list[str], sweep: str, pool: bool) -> None:
    """Refuse files that do not share what one frontier needs (pooled files: all but seeds and the
    held-out windows, and their seeds must be disjoint)."""
    first = docs[0]
    for doc, name in zip(docs[1:], names[1:], strict=True):
        if _sweep(doc, name) != sweep:
            raise ArdmError(f"{name} sweeps {doc['frontier']['sweep']}, {names[0]} sweeps {sweep}")
        checks = [(doc.get(k), first.get(k), what) for k, what in SHARED if not (pool and k == "seeds")]
        checks += [(doc["config"].get(k), first["config"].get(k), f"config {k}")
                   for k in (*SHARED_CONFIG, _fixed_option(sweep))]
        checks += [] if pool else [((doc.get("data") or {}).get(k), (first.get("data") or {}).get(k),
                                    f"held-out {k}") for k in SHARED_DATA]
        for mine, theirs, what in checks:
            if json.dumps(mine, sort_keys=True) != json.dumps(theirs, sort_keys=True):
                raise ArdmError(f"{name} and {names[0]} differ in their {what} ({mine!r} vs {theirs!r}): "
                                "only sweeps of the same models, data and seeds can be read as one frontier")
    if pool:
        seen: set = set()
        for doc, name in zip(docs, names, strict=True):
            if seen & set(doc["seeds"]):
                raise ArdmError(f"{name} repeats seeds of an earlier file: --pool reads replications on "
                                "disjoint seeds as one sample (merge same-seed sweeps without --pool)")
            seen |= set(doc["seeds"])


def _runs_by_point(docs: list[dict], names: list[str], sweep: str) -> dict[tuple, list[dict]]:
    """Every file's runs per (label, NFE, swept value); one point must name one configuration."""
    runs: dict[tuple, list[dict]] = {}
    for doc, name in zip(docs, names, strict=True):
        for r in doc["runs"]:
            key = (r["label"], r["nfe_budget"], r[sweep])
            if key in runs and runs[key][0]["options"] != r["options"]:
                raise ArdmError(f"{name}: label {r['label']!r} at NFE {r['nfe_budget']} and {sweep} "
                                f"{r[sweep]:g} names another sampler configuration than in an earlier file")
            runs.setdefault(key, []).append(r)
    return runs


POINT_KEYS = ("label", "sampler", "options", "temperature", "top_p", "nfe_budget")


def pool_runs(runs: list[dict], seed: int) -> dict:
    """One run from replications of one point: samples concatenated, point statistics recomputed
    (what the frontier reads; per-run revision statistics are not carried over)."""
    samples = [s for r in runs for s in r["samples"]]
    nll = [(s["gen_nll"], s["gen_tokens"]) for s in samples]
    ent = np.array([s["entropy"] for s in samples], dtype=np.float64)
    out = {**{k: runs[0][k] for k in POINT_KEYS if k in runs[0]}, "samples": samples,
           "gen_ppl": perplexity(nll), "gen_ppl_ci": list(ppl_ci(nll, seed=seed)),
           "entropy": float(ent.mean()), "entropy_ci": list(bootstrap_ci(ent, seed=seed))}
    if all("self_bleu" in r for r in runs):
        out.update(self_bleu_stats([s["text"] for s in samples], seed))
    return out


def _merge_seed_groups(docs: list[dict], names: list[str]) -> tuple[list[dict], list[str]]:
    """Files grouped by their seeds, each group of two or more merged (without pooling) into one."""
    groups: dict[tuple, list[int]] = {}
    for i, d in enumerate(docs):
        groups.setdefault(tuple(d["seeds"]), []).append(i)
    if len(groups) in (1, len(docs)):  # one seed set (refused when pooled) or one file per set
        return docs, names
    merged = [docs[ix[0]] if len(ix) == 1 else merge_sweeps([docs[i] for i in ix], [names[i] for i in ix])
              for ix in groups.values()]
    return merged, [" + ".join(names[i] for i in ix) for ix in groups.values()]


def merge_sweeps(docs: list[dict], names: list[str], pool: bool = False) -> dict:
    """One results dict whose runs are the union of `docs`' runs (a (label, NFE, swept value) point
    given twice is kept once if both runs used the same options, refused otherwise), with the
    frontier rebuilt over it; the judge's frontier too when every file was judged. pool: the files
    are replications on disjoint seeds, pooled point by point (module docstring)."""
    if len(docs) < 2:
        raise ArdmError("--frontier merges two or more swept compare results.json files")
    if pool:  # files of one seed set are merged first, then the seed sets pooled
        docs, names = _merge_seed_groups(docs, names)
    sweep = _sweep(docs[0], names[0])
    first, seed = docs[0], docs[0]["config"]["seed"]
    _check_shared(docs, names, sweep, pool)
    points = _runs_by_point(docs, names, sweep)
    merged: dict[str, Any] = {**first, "merged_from": list(names)}
    if pool:
        kept = {k: rs for k, rs in points.items() if len(rs) == len(docs)}
        merged["runs"] = [pool_runs(rs, seed) for rs in kept.values()]
        merged["seeds"] = [x for d in docs for x in d["seeds"]]
        merged["pooled"] = {"files": list(names), "held_out_from": names[0],
                            "dropped": [f"{lab} NFE {K} {sweep} {v:g}" for lab, K, v in points if
                                        (lab, K, v) not in kept]}
    else:
        merged["runs"] = [rs[0] for rs in points.values()]
    f = first["frontier"]
    merged["frontier"] = build_frontier(merged, f["data_entropy"], f["data_entropy_source"], sweep, seed=seed)
    merged.pop("judge", None)
    judged = all("judge" in d for d in docs) and all("judge_nll" in r["samples"][0] for r in merged["runs"])
    if judged and f["data_entropy"] is not None:
        rows = {(row["label"], row["nfe_budget"], row["temperature"]): row
                for d in reversed(docs) for row in d["judge"]["runs"]}  # the first file's row wins
        if pool:  # each pooled run's judge row from its pooled samples (MAUVE is not poolable)
            pooled = {}
            for r in merged["runs"]:
                if (k := (r["label"], r["nfe_budget"], r["temperature"])) in rows:
                    nll = [(s["judge_nll"], s["chars"]) for s in r["samples"]]
                    pooled[k] = {**{x: v for x, v in rows[k].items() if x != "mauve"},
                                 **bpc_stats(nll, seed)}
            rows = pooled
        merged["judge"] = {**first["judge"], "runs": list(rows.values()),
                           **judge_frontier(merged, merged["runs"], f["data_entropy"], seed)}
    return merged
