"""summary.md and the solve-rate plot of `ardm sudoku bench`."""

from __future__ import annotations

from pathlib import Path

from ardm.core.checkpoint import atomic_write_text
from ardm.evaluation.plots import nfe_axis, pyplot, save_figure

BENCH_FORMAT = "ardm-sudoku-bench"  # results.json's "format" (`ardm table` recognises it)


def _revisions(s: dict | None) -> str:
    """The overwrite and remask columns of one run (older results files have no remask counts)."""
    if not s:
        return "| - | - | - | - | - | - |"
    if s.get("remasks"):
        rem = f"| {s['remasks']} | {s['remask_precision']:.2f} | {s['remask_share_in_conflict']:.2f} |"
    else:
        rem = f"| {s.get('remasks', '-')} | - | - |"
    base = f" ({s['conflict_base_rate']:.2f})" if "conflict_base_rate" in s else ""
    return f"| {s['overwrites']} | {s['helpful']} / {s['harmful']} | {s['share_in_conflict']:.2f}{base} {rem}"


def bench_table(results: dict) -> list[str]:
    rows = ["| set | NFE budget | sampler | solve rate [95% CI] | solved | violations / grid "
            "| mean NFE used | overwrites | helpful / harmful | in conflict (chance) | remasks "
            "| of wrong digits | in conflict |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lo, hi = r["solve_rate_ci"]
        rows.append(f"| {r['set']} | {r['nfe_budget']} | {r['label']} | {100 * r['solve_rate']:.1f}% "
                    f"[{100 * lo:.1f}, {100 * hi:.1f}] | {r['solved']}/{r['puzzles']} "
                    f"| {r['violations_per_grid']:.2f} | {r['nfe_mean']:.1f} {_revisions(r['selectivity'])}")
    return rows


def strata_table(results: dict) -> list[str]:
    """Solve rate per band of givens (hard sets), one row per run that has them."""
    rows = ["| set | NFE budget | sampler | " + " | ".join(
        f"{lo}-{hi} givens" for lo, hi in _bands(results)) + " |"]
    rows.append("|---|---|---|" + "---|" * len(_bands(results)))
    for r in results["runs"]:
        if not r.get("by_givens") or len(r["by_givens"]) < 2:
            continue
        cells = {tuple(b["givens"]): b for b in r["by_givens"]}
        row = [f"{100 * cells[b]['solve_rate']:.0f}% ({cells[b]['solved']}/{cells[b]['puzzles']})"
               if b in cells else "-" for b in _bands(results)]
        rows.append(f"| {r['set']} | {r['nfe_budget']} | {r['label']} | " + " | ".join(row) + " |")
    return rows if len(rows) > 2 else []


def logic_table(results: dict) -> list[str]:
    """Solve rate on puzzles that naked and hidden singles settle vs those that need a guess."""
    rows = ["| set | NFE budget | sampler | singles suffice | needs search |", "|---|---|---|---|---|"]
    for r in results["runs"]:
        cells = {b["logic"]: b for b in r.get("by_logic") or []}
        if cells:
            row = [f"{100 * cells[k]['solve_rate']:.0f}% ({cells[k]['solved']}/{cells[k]['puzzles']})"
                   if k in cells else "-" for k in ("singles", "search")]
            rows.append(f"| {r['set']} | {r['nfe_budget']} | {r['label']} | " + " | ".join(row) + " |")
    return rows if len(rows) > 2 else []


def _bands(results: dict) -> list[tuple[int, int]]:
    return sorted({tuple(b["givens"]) for r in results["runs"] for b in r.get("by_givens") or []})


def plot_solve_rate(results: dict, out_png: Path) -> Path:
    plt = pyplot()
    sets = list(dict.fromkeys(r["set"] for r in results["runs"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4.2), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        labels = list(dict.fromkeys(r["label"] for r in results["runs"]))
        for label in labels:
            rs = sorted((r for r in results["runs"] if r["set"] == name and r["label"] == label),
                        key=lambda r: r["nfe_budget"])
            if not rs:
                continue
            x = [r["nfe_budget"] for r in rs]
            y = [100 * r["solve_rate"] for r in rs]
            err = [[100 * (r["solve_rate"] - r["solve_rate_ci"][0]) for r in rs],
                   [100 * (r["solve_rate_ci"][1] - r["solve_rate"]) for r in rs]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        lo, hi = results["difficulty_givens"][name]
        ax.set(title=f"{name} ({lo}-{hi} givens)", xlabel="NFE budget", ylabel="solve rate, %",
               ylim=(-3, 103))
        nfe_axis(ax, results["config"]["nfe"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out_png)


def bench_tables(results: dict) -> list[str]:
    """The solve-rate table, then (where the sets have them) by givens and by what a puzzle needs:
    summary.md's tables, and what `ardm table` prints for a bench's results.json."""
    lines = bench_table(results)
    strata = strata_table(results)
    if strata:
        lines += ["", "Solve rate by number of givens:", "", *strata]
    logic = logic_table(results)
    if logic:
        lines += ["", "Solve rate by what the puzzle needs (naked and hidden singles alone, or a guess):", "",
                  *logic]
    return lines


def write_bench_report(results: dict, out: Path) -> None:
    png = plot_solve_rate(results, out / "solve_rate.png")
    cfg = results["config"]
    lines = ["# ardm sudoku bench", "",
             f"- Denoiser `{results['checkpoint']['path']}` (recipe {results['checkpoint']['recipe']}); "
             f"AR twin: `{cfg['ar_checkpoint'] or 'none'}`.",
             f"- {cfg['num']} generated puzzles per set (unique solutions; files `puzzles-*.csv` here), "
             f"seed {cfg['seed']}; temperature {cfg['temperature']}; one attempt per puzzle; a row stops "
             "once its grid is valid (mean NFE used counts that).",
             "- Solved = every cell a digit, no rule broken, givens kept. Intervals: Wilson 95%.",
             "- Overwrites are changes of a visible digit; helpful = wrong -> right, harmful = right -> "
             "wrong; in conflict = share of overwritten cells that broke a rule just before (chance: the "
             "share of all written, non-given digits in conflict over the run's steps). Remasks "
             "(digit -> MASK, e.g. remdm): the share that removed a wrong digit, and the share in conflict.",
             f"- git commit {results['git_commit']}; wall time {results['wall_time_s']} s.", "",
             *bench_tables(results), ""]
    if results["skipped"]:
        lines += ["Not run: " + "; ".join(f"{s['label']} at NFE {s['nfe_budget']} ({s['set']})"
                                          for s in results["skipped"][:12]), ""]
    lines += [f"![solve rate]({png.name})"]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
