"""summary.md and the BLEU-vs-NFE plot of `ardm seq2seq eval`."""

from __future__ import annotations

from pathlib import Path

from ardm.evaluation.plots import nfe_axis, pyplot, save_figure

NAMES = {"bleu": "BLEU", "chrf": "chrF", "rouge_l": "ROUGE-L", "coverage": "coverage"}
AR_SAMPLERS = ("ar", "beam")  # the AR twin's rows: greedy and beam search


def results_table(results: dict) -> list[str]:
    """One row per (sampler, NFE budget, MBR k); the AR twin's rows first."""
    metrics = results["metrics"]
    head = " | ".join(NAMES[m] + (" (± 95% CI)" if m == "bleu" else "") for m in metrics)
    rows = [f"| sampler | NFE budget | MBR k | NFE x k per source | {head} |",
            "|---|---|---|---|" + "---|" * len(metrics)]
    for r in results["runs"]:
        rows.append(f"| {r['label']} | {r['nfe_budget']} | {r['mbr']} | {r['nfe_per_source']:.1f} | "
                    + " | ".join(metric_text(r, m) for m in metrics) + " |")
    return rows


def metric_text(run: dict, metric: str) -> str:
    """The run's metric, with its 95% half-width where it has one."""
    ci = run.get(f"{metric}_ci")
    return f"{run[metric]:.2f}" + ("" if ci is None else f" ± {ci:.2f}")


def goal_lines(results: dict) -> list[str]:
    """The issue's targets: fixed at NFE 20 with MBR 10 >= AR greedy; at NFE <= 5 within 3 BLEU.
    They are Multi30k's: none for multi-reference sets (CommonGen)."""
    if "rouge_l" in results["metrics"]:
        return []
    runs = results["runs"]
    greedy = next((r for r in runs if r["label"] == "ar-greedy"), None)
    fixed = [r for r in runs if r["sampler"] == "fixed"]
    if greedy is None or not fixed:
        return []
    out = [f"- AR twin greedy: BLEU {greedy['bleu']:.2f} at NFE {greedy['nfe_per_source']:.1f} per source."]
    top = max((r for r in fixed if r["nfe_budget"] == 20 and r["mbr"] == 10), key=lambda r: r["bleu"],
              default=None)
    if top is not None:
        verdict = "meets" if top["bleu"] >= greedy["bleu"] else "misses"
        out.append(f"- `fixed` NFE 20, MBR 10: BLEU {top['bleu']:.2f} ({verdict} the goal >= greedy).")
    low = max((r for r in fixed if r["nfe_budget"] <= 5), key=lambda r: r["bleu"], default=None)
    if low is not None:
        gap = greedy["bleu"] - low["bleu"]
        verdict = "meets" if gap <= 3 else "misses"
        out.append(f"- best `fixed` at NFE <= 5: BLEU {low['bleu']:.2f} (NFE {low['nfe_budget']}, MBR "
                   f"{low['mbr']}), greedy minus it {gap:+.2f} ({verdict} the goal: within 3).")
    return out


def write_summary(results: dict) -> str:
    cfg, data = results["config"], results["data"]
    sig = next((r for r in results["runs"]), None)
    lines = ["# ardm seq2seq eval", "",
             f"- Denoiser `{results['checkpoint']['path']}` (recipe {results['checkpoint'].get('recipe')}); "
             f"AR twin `{cfg['ar_checkpoint'] or 'none'}`.",
             f"- `{data['path']}` split {data['split']}: {data['items']} items, {data['references']} "
             f"references (sha256 {data['sha256'][:12]}); sources truncated: "
             f"{data['truncated_sources']['sources']}.",
             f"- Temperature {cfg['temperature']}, seed {cfg['seed']}; MBR k uses the first k of "
             f"{max(cfg['mbr'])} candidates per source (NFE x k); git commit {results['git_commit']}."]
    if sig is not None:
        lines += [f"- sacrebleu: `{sig['bleu_signature']}`, `{sig['chrf_signature']}`"]
    lines += ["", *goal_lines(results), "", *results_table(results), "", "![BLEU vs NFE](bleu_vs_nfe.png)"]
    return "\n".join(lines) + "\n"


def write_plot(results: dict, out_png: Path) -> Path:
    """BLEU vs NFE budget: one line per sampler and MBR k (k = 1 solid), the AR twin as levels."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    runs = [r for r in results["runs"] if r["sampler"] not in AR_SAMPLERS]
    ks = sorted({r["mbr"] for r in runs})
    styles = ["-", "--", ":", "-."]
    colours: dict[tuple, str] = {}
    several_t = len({r["temperature"] for r in runs}) > 1  # merged grids (`ardm seq2seq table`)
    for label, temp in dict.fromkeys((r["label"], r["temperature"]) for r in runs):
        name = f"{label} T {temp:g}" if several_t else label
        for j, k in enumerate(ks):
            rs = sorted((r for r in runs if (r["label"], r["temperature"], r["mbr"]) == (label, temp, k)),
                        key=lambda r: r["nfe_budget"])
            if not rs:
                continue
            line = ax.plot([r["nfe_budget"] for r in rs], [r["bleu"] for r in rs], styles[j % 4], marker="o",
                           color=colours.get((label, temp)), label=f"{name}, MBR {k}" if k > 1 else name)
            colours[(label, temp)] = line[0].get_color()
    for r in results["runs"]:
        if r["sampler"] in AR_SAMPLERS:
            ax.axhline(r["bleu"], color="k", ls="-" if r["sampler"] == "ar" else "--", lw=1,
                       label=f"{r['label']} (NFE {r['nfe_per_source']:.0f})")
    ax.set(xlabel="NFE budget per candidate", ylabel="BLEU (sacrebleu)",
           title=f"{Path(results['data']['path']).name} {results['data']['split']}")
    if runs:
        nfe_axis(ax, sorted({r["nfe_budget"] for r in runs}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, out_png)
