"""Report plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lay out, write (PNG, 110 dpi, creating the folder) and close a figure; every report plot ends here."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_training_curves(runs: dict[str, Path], out_png: Path) -> Path:
    """Train loss and validation bits/token vs step for each run's metrics.jsonl."""
    plt = pyplot()
    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for label, run_dir in runs.items():
        recs = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
        train = [(r["step"], r["loss"]) for r in recs if r.get("split") == "train"]
        val = [(r["step"], r.get("val_elbo_bits_per_token", r.get("val_bits_per_token")))
               for r in recs if r.get("split") == "val"]
        if train:
            ax_train.plot(*zip(*train), label=label)
        if val:
            ax_val.plot(*zip(*val), marker="o", label=label)
    ax_train.set(title="training loss, nats/token\n(each model's own objective)", xlabel="step",
                 ylabel="loss")
    ax_val.set(title="validation bits/token\n(diffusion: ELBO bound; AR: exact NLL)",
               xlabel="step", ylabel="bits/token")
    for ax in (ax_train, ax_val):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, out_png)


def nfe_axis(ax, budgets) -> None:
    """A log-2 NFE axis labelled exactly at the budgets (no minor-tick labels crowding them)."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(k) for k in budgets])
    ax.minorticks_off()


def _by_label(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["nfe"]):
        out.setdefault(r["label"], []).append(r)
    return out


def _errors(runs: list[dict], key: str) -> list[list[float]]:
    """Asymmetric error bars [[below...], [above...]] from each run's `key` and `key_ci`."""
    return [[r[key] - r[key + "_ci"][0] for r in runs], [r[key + "_ci"][1] - r[key] for r in runs]]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, loss) points no other point beats on both, by increasing cost."""
    front, best = [], float("inf")
    for c, v in sorted(points):
        if v < best:
            front.append((c, v))
            best = v
    return front


def _quality_figure(plt, results: dict, groups: dict):
    """Gen-PPL and entropy against NFE, per sampler, with the held-out data's lines."""
    data = results.get("data") or {}
    fig, (ax_q, ax_h) = plt.subplots(1, 2, figsize=(12, 4.6))
    for label, rs in groups.items():
        x = [r["nfe"] for r in rs]
        y = [r["gen_ppl"] for r in rs]
        line = ax_q.errorbar(x, y, yerr=_errors(rs, "gen_ppl"), marker="o", capsize=3, label=label)
        ax_h.errorbar(x, [r["entropy"] for r in rs], yerr=_errors(rs, "entropy"), marker="o", capsize=3,
                      color=line[0].get_color(), label=label)
    if "gen_ppl" in data:
        ax_q.axhline(data["gen_ppl"], color="k", ls="--", lw=1, label="held-out data")
        ax_h.axhline(data["entropy"], color="k", ls="--", lw=1, label="held-out data")
        tol = results["config"]["entropy_tolerance"]
        ax_h.axhspan(ax_h.get_ylim()[0], data["entropy"] - tol, color="red", alpha=0.08,
                     label="flagged: low entropy")
    ax_q.set(xscale="log", xlabel="NFE (denoiser passes per sample)",
             ylabel="generative perplexity (lower is better)", title="quality vs compute")
    ax_h.set(xscale="log", xlabel="NFE", ylabel="unigram entropy, nats",
             title="sample entropy (read gen-PPL with it)")
    for ax in (ax_q, ax_h):
        nfe_axis(ax, results["config"]["nfe"])
        ax.grid(alpha=0.3)
    ax_q.legend(fontsize=8)
    return fig


def _pareto_figure(plt, results: dict, groups: dict, flag):
    """Gen-PPL against NFE with the Pareto frontier of the entropy-matched runs."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, (label, rs) in enumerate(groups.items()):
        color = f"C{i % 10}"  # hollow markers: runs flagged for low entropy (not on the frontier)
        shown = False
        for low in (False, True):
            pts = [(r["nfe"], r["gen_ppl"]) for r in rs if flag(r) == low]
            if pts:
                ax.scatter(*zip(*pts), edgecolors=color, facecolors="none" if low else color,
                           label=None if shown else label + (" (hollow: low entropy)" if low else ""))
                shown = True
    front = pareto_front([(r["nfe"], r["gen_ppl"]) for r in results["runs"] if not flag(r)])
    if front:
        ax.step(*zip(*front), where="post", color="k", lw=1.2, label="Pareto frontier (entropy-matched runs)")
    ax.set(xscale="log", xlabel="NFE", ylabel="generative perplexity",
           title="Pareto frontier: gen-PPL vs NFE")
    nfe_axis(ax, results["config"]["nfe"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _overwrites_figure(plt, results: dict, groups: dict, top: int, revising: list):
    """Overwrites at each step (largest budget) and per step against the budget."""
    fig, (ax_s, ax_k) = plt.subplots(1, 2, figsize=(12, 4.2))
    for r in revising:
        ax_s.plot(range(1, len(r["overwrites_by_step"]) + 1), r["overwrites_by_step"], label=r["label"])
    for label, rs in groups.items():
        ax_k.plot([r["nfe"] for r in rs], [r["overwrites_per_step"] for r in rs], marker="o", label=label)
    ax_s.set(xlabel="step k", ylabel="effective overwrites per sample",
             title=f"overwrites at each step (NFE {top})")
    ax_k.set(xscale="log", xlabel="NFE", ylabel="overwrites per step",
             title="mean overwrites per step vs budget")
    nfe_axis(ax_k, results["config"]["nfe"])
    for ax in (ax_s, ax_k):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def _heatmap_figure(plt, results: dict, groups: dict, top: int, revising: list):
    """Steps x positions heatmaps of where revisions fall, one panel per revising run."""
    cols = min(3, len(revising))
    rows = -(-len(revising) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax, r in zip(axes.flat, revising, strict=False):
        im = ax.imshow(r["heatmap"], aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
        ax.set(title=r["label"], xlabel="position in the sequence", ylabel="step k")
        fig.colorbar(im, ax=ax, label="overwrites per sample")
    for ax in list(axes.flat)[len(revising):]:
        ax.axis("off")
    fig.suptitle(f"where and when tokens are revised (NFE {top})")
    return fig


def _time_figure(plt, results: dict, groups: dict):
    """Milliseconds of sampling per effective overwrite against NFE."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, rs in groups.items():
        pts = [(r["nfe"], 1000 * r["s_per_revision"]) for r in rs if r["s_per_revision"]]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set(yscale="log", xlabel="NFE", ylabel="ms of sampling per effective overwrite",
           title="time per revision (wall time / overwrites)")
    nfe_axis(ax, results["config"]["nfe"])
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return fig


def _frontier_figure(plt, results: dict):
    """Gen-PPL against entropy, one panel per NFE budget, one curve per sampler along the sweep
    (both 95% intervals), the held-out data's point marked and the band data - 0.3 .. data shaded."""
    f, data = results["frontier"], results.get("data") or {}
    budgets = sorted({c["nfe_budget"] for c in f["curves"]})
    labels = list(dict.fromkeys(c["label"] for c in f["curves"]))
    fig, axes = plt.subplots(1, len(budgets), figsize=(6.2 * len(budgets), 4.8), squeeze=False, sharey=True)
    for ax, K in zip(axes[0], budgets, strict=True):
        for c in (c for c in f["curves"] if c["nfe_budget"] == K):
            p = c["points"]
            x, y = [q["entropy"] for q in p], [q["gen_ppl"] for q in p]
            ax.errorbar(x, y, xerr=_errors(p, "entropy"), yerr=_errors(p, "gen_ppl"), marker="o", ms=4,
                        capsize=2, color=f"C{labels.index(c['label']) % 10}", label=c["label"])
            ax.annotate(f"{p[0]['value']:g}", (x[0], y[0]), fontsize=7, alpha=0.7)
            ax.annotate(f"{p[-1]['value']:g}", (x[-1], y[-1]), fontsize=7, alpha=0.7)
        h = f["data_entropy"]
        if h is not None:
            ax.axvline(h, color="k", ls="--", lw=1)
            ax.axvspan(h + f["offsets"][0], h, color="green", alpha=0.06, label="data - 0.3 .. data")
        if "gen_ppl" in data:
            ax.errorbar([data["entropy"]], [data["gen_ppl"]], xerr=_errors([data], "entropy"),
                        yerr=_errors([data], "gen_ppl"), marker="*", ms=14, color="k", label="held-out data")
        ax.set(yscale="log", xlabel="unigram entropy, nats (more diverse ->)", title=f"NFE {K}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("generative perplexity (lower is better)")
    axes[0][-1].legend(fontsize=7)
    sweep = "temperature" if f["sweep"] == "temperature" else "top-p"
    fig.suptitle(f"quality-diversity frontier: the {sweep} sweep per sampler (end values annotated)")
    return fig


def base_runs(results: dict) -> list[dict]:
    """The runs the per-NFE figures show: all of them, or in a sweep those at the point nearest the
    run's own temperature / top-p (one per sampler and budget, so the lines stay readable)."""
    f = results.get("frontier")
    if not f:
        return results["runs"]
    base = results["config"][f["sweep"]]
    near = min(f["values"], key=lambda v: (abs(v - base), v))
    return [r for r in results["runs"] if r[f["sweep"]] == near]


def plot_compare(results: dict, out: Path, flag=lambda r: False) -> list[Path]:
    """The compare report's figures: quality vs NFE (with entropy), the Pareto frontier, overwrites
    per step, a steps x positions heatmap of revisions, and time per revision; with a sweep, first
    the quality-diversity frontier."""
    plt = pyplot()
    runs = base_runs(results)
    results = {**results, "runs": runs}
    groups = _by_label(runs)
    top = max(r["nfe_budget"] for r in runs)
    revising = [r for r in runs if r["nfe_budget"] == top and r["overwrites_per_sample"] > 0]
    figures = [(_quality_figure(plt, results, groups), "quality_vs_nfe.png"),
               (_pareto_figure(plt, results, groups, flag), "pareto.png"),
               (_overwrites_figure(plt, results, groups, top, revising), "overwrites_per_step.png")]
    if revising:
        figures.append((_heatmap_figure(plt, results, groups, top, revising), "focus_heatmap.png"))
    figures.append((_time_figure(plt, results, groups), "time_per_revision.png"))
    if results.get("frontier"):
        figures.insert(0, (_frontier_figure(plt, results), "frontier.png"))
    return [save_figure(fig, out / name) for fig, name in figures]


def plot_budget_curve(rows: list[dict], out: Path, title: str = "") -> Path:
    """`ardm plan` rows: predicted (and, if evaluated, realised) bits/token against the budget K,
    the shape of Hoogeboom et al.'s parallel-generation figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    budgets = [r["budget"] for r in rows]
    ax.plot(budgets, [r["predicted_bits_per_token"] for r in rows], marker="o", label="planned (predicted)")
    if all("realised_bits_per_token" in r for r in rows):
        ax.errorbar(budgets, [r["realised_bits_per_token"] for r in rows],
                    yerr=[1.96 * r["realised_bits_per_token_se"] for r in rows], marker="s", capsize=3,
                    label="planned (realised on other windows, 95% CI)")
    nfe_axis(ax, budgets)
    ax.set(xlabel="parallel steps K (budget)", ylabel="bits/token", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out)
