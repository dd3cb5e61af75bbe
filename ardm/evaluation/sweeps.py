"""Several compare sweeps read as one frontier (SPEC §11.4): `ardm table --frontier A B ...`.

A frontier often grows run by run: a cold sweep after a warm one, a new sampler after the peers.
Read separately, a curve whose points sit in two files is read in pieces (H-0.3 from one sweep,
H from the other); merged, it is one curve with one bootstrap. Merging is only meaningful when the
runs share everything but the sampler and the swept value: the same denoiser and reference (path,
step, validation figure), the same held-out windows, prompt, seeds and sample length, the same sweep
kind, and the same fixed token options. Anything else is refused with the field that differs.
"""

from __future__ import annotations

import json
from typing import Any

from ardm.errors import ArdmError
from ardm.evaluation.frontier import build_frontier
from ardm.evaluation.judge import judge_curves

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


def merge_sweeps(docs: list[dict], names: list[str]) -> dict:
    """One results dict whose runs are the union of `docs`' runs (a (label, NFE, swept value) point
    given twice is kept once if both runs used the same options, refused otherwise), with the
    frontier rebuilt over it; the judge's frontier too when every file was judged."""
    if len(docs) < 2:
        raise ArdmError("--frontier merges two or more swept compare results.json files")
    sweep = _sweep(docs[0], names[0])
    first = docs[0]
    for doc, name in zip(docs[1:], names[1:], strict=True):
        if _sweep(doc, name) != sweep:
            raise ArdmError(f"{name} sweeps {doc['frontier']['sweep']}, {names[0]} sweeps {sweep}")
        checks = [(doc.get(k), first.get(k), what) for k, what in SHARED]
        checks += [(doc["config"].get(k), first["config"].get(k), f"config {k}")
                   for k in (*SHARED_CONFIG, _fixed_option(sweep))]
        checks += [((doc.get("data") or {}).get(k), (first.get("data") or {}).get(k), f"held-out {k}")
                   for k in SHARED_DATA]
        for mine, theirs, what in checks:
            if json.dumps(mine, sort_keys=True) != json.dumps(theirs, sort_keys=True):
                raise ArdmError(f"{name} and {names[0]} differ in their {what} ({mine!r} vs {theirs!r}): "
                                "only sweeps of the same models, data and seeds can be read as one frontier")
    runs: dict[tuple, dict] = {}
    for doc, name in zip(docs, names, strict=True):
        for r in doc["runs"]:
            key = (r["label"], r["nfe_budget"], r[sweep])
            if key in runs and runs[key]["options"] != r["options"]:
                raise ArdmError(f"{name}: label {r['label']!r} at NFE {r['nfe_budget']} and {sweep} "
                                f"{r[sweep]:g} names another sampler configuration than in an earlier file")
            runs.setdefault(key, r)
    merged: dict[str, Any] = {**first, "runs": list(runs.values()), "merged_from": list(names)}
    f = first["frontier"]
    merged["frontier"] = build_frontier(merged, f["data_entropy"], f["data_entropy_source"], sweep,
                                        seed=first["config"]["seed"])
    merged.pop("judge", None)
    judged = all("judge" in d for d in docs) and all("judge_nll" in r["samples"][0] for r in merged["runs"])
    if judged and f["data_entropy"] is not None:
        rows = {(row["label"], row["nfe_budget"], row["temperature"]): row
                for d in reversed(docs) for row in d["judge"]["runs"]}  # the first file's row wins
        merged["judge"] = {**first["judge"], "runs": list(rows.values()),
                           "frontier": judge_curves(merged, merged["runs"], f["data_entropy"],
                                                    first["config"]["seed"])}
    return merged
