"""`ardm seq2seq table`: several `ardm seq2seq eval` results.json files of one denoiser on one split,
merged into the issue's grid (sampler x NFE budget, MBR k = 1 / 4 / 10 in each cell) as markdown.

A long grid is run as several evals (one per core, or one session after another); this is the
command that turns them back into one table, so the README's table is regenerated, not typed. The
AR twin's rows may come from any file of the same split: they do not depend on the denoiser.
"""

from __future__ import annotations

import json
from pathlib import Path

from ardm.errors import ArdmError
from ardm.tasks.seq2seq.report import AR_SAMPLERS, NAMES, goal_lines, metric_text


def read_results(path: str | Path) -> dict:
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        _ = results["data"]["sha256"], results["checkpoint"]["path"], results["runs"]
    except FileNotFoundError:
        raise ArdmError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise ArdmError(f"{path}: not a results.json written by `ardm seq2seq eval`") from None
    return results


def merge_results(paths: list[str | Path], ar_paths: list[str | Path] = ()) -> dict:
    """One results dict with every run of `paths` and the AR twin's runs of `ar_paths` (the first
    file's header). Refuses files of other data (sha256, split, items) and diffusion runs of another
    denoiser (path and step); a cell measured twice keeps the first file's run and is counted in
    `duplicates`."""
    if not paths:
        raise ArdmError("give at least one results.json")
    merged, seen = None, set()
    for path, ar_only in [(p, False) for p in paths] + [(p, True) for p in ar_paths]:
        res = read_results(path)
        if ar_only:
            res = {**res, "runs": [r for r in res["runs"] if r["sampler"] in AR_SAMPLERS]}
        if merged is None:
            merged = {**res, "runs": [], "duplicates": 0, "files": []}
        merged["files"].append(str(path))
        _check_same(merged, res, path)
        for run in res["runs"]:
            key = (run["label"], run["temperature"], run["nfe_budget"], run["mbr"])
            if key in seen:
                merged["duplicates"] += 1
                continue
            seen.add(key)
            merged["runs"].append(run)
    assert merged is not None
    return merged


def _check_same(merged: dict, res: dict, path) -> None:
    a, b = merged["data"], res["data"]
    for key in ("sha256", "split", "items"):
        if a[key] != b[key]:
            raise ArdmError(f"{path}: data {key} {b[key]!r} differs from {merged['files'][0]}'s {a[key]!r}; "
                            "merge evals of one split of one corpus")
    if any(r["sampler"] not in AR_SAMPLERS for r in res["runs"]):
        ident = (merged["checkpoint"]["path"], merged["checkpoint"].get("step"))
        if not _has_diffusion(merged):
            merged["checkpoint"] = res["checkpoint"]
        elif (res["checkpoint"]["path"], res["checkpoint"].get("step")) != ident:
            raise ArdmError(f"{path}: denoiser {res['checkpoint']['path']} differs from the merged runs' "
                            f"{ident[0]}; one table per denoiser")


def _has_diffusion(merged: dict) -> bool:
    return any(r["sampler"] not in AR_SAMPLERS for r in merged["runs"])


def grid_lines(merged: dict, metric: str = "bleu") -> list[str]:
    """The markdown grid: AR rows as bullets, then one row per (sampler, temperature) with a column
    per NFE budget; a cell is the metric at MBR k = 1 / 4 / 10 ("-" where not measured) and
    [NFE per source at k = 1]."""
    if metric not in merged["metrics"]:
        raise ArdmError(f"--metric {metric}: these results have {', '.join(merged['metrics'])}")
    runs = merged["runs"]
    name = NAMES[metric]
    data, ckpt = merged["data"], merged["checkpoint"]
    dups = f", {merged['duplicates']} duplicate cells ignored" if merged["duplicates"] else ""
    lines = [f"{Path(data['path']).name} {data['split']}: {data['items']} items, {data['references']} "
             f"references (sha256 {data['sha256'][:12]}); denoiser `{ckpt['path']}` (step "
             f"{ckpt.get('step')}); {name}; {len(merged['files'])} results files{dups}.", ""]
    for r in runs:
        if r["sampler"] in AR_SAMPLERS:
            lines.append(f"- AR twin {r['label']}: {name} {metric_text(r, metric)} at "
                         f"{r['nfe_per_source']:.1f} passes per source")
    diffusion = [r for r in runs if r["sampler"] not in AR_SAMPLERS]
    budgets = sorted({r["nfe_budget"] for r in diffusion})
    ks = sorted({r["mbr"] for r in diffusion})
    if lines[-1] != "":
        lines.append("")
    lines += [f"| sampler | temperature | {' | '.join(f'NFE {K}' for K in budgets)} |",
              "|---|---|" + "---|" * len(budgets)]
    cells = {(r["label"], r["temperature"], r["nfe_budget"], r["mbr"]): r for r in diffusion}
    for label, temp in dict.fromkeys((r["label"], r["temperature"]) for r in diffusion):
        row = [_cell([cells.get((label, temp, K, k)) for k in ks], metric) for K in budgets]
        lines.append(f"| `{label}` | {temp:g} | " + " | ".join(row) + " |")
    widths = [r[f"{metric}_ci"] for r in diffusion if r.get(f"{metric}_ci") is not None]
    span = f"; 95% half-widths {min(widths):.2f}-{max(widths):.2f} over all cells" if widths else ""
    k_text = " / ".join(map(str, ks))
    lines += ["", f"Cells: {name} at MBR k = {k_text} [NFE per source at k = {ks[0]}]{span}."]
    if metric == "bleu":
        lines += ["", *goal_lines(merged)]
    return lines


def _cell(runs: list[dict | None], metric: str) -> str:
    if all(r is None for r in runs):
        return "-"
    parts = ["-" if r is None else (metric_text(r, metric) if i == 0 else f"{r[metric]:.2f}")
             for i, r in enumerate(runs)]
    first = runs[0]
    return " / ".join(parts) + ("" if first is None else f" [{first['nfe_per_source']:.1f}]")
