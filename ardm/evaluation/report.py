"""summary.md and plots of an `ardm compare` / `ardm ablate` result (SPEC §8.2-8.5).

"Best" at a budget means the lowest generative perplexity among runs whose mean sample entropy is
no more than `entropy_tolerance` nats below the held-out data's (runs below are flagged, never
ranked: a repetitive sampler must not win on perplexity). Differences are called significant only
when the 95% bootstrap intervals do not overlap.
"""

from __future__ import annotations

from pathlib import Path

from ardm.core.checkpoint import atomic_write_text
from ardm.evaluation.frontier import frontier_lines, repetitive
from ardm.evaluation.plots import plot_compare

LOW = "low entropy"
REPETITIVE = "repetitive"  # Self-BLEU above the held-out text's interval (report.repetitive_run)


def reference_entropy(results: dict) -> tuple[float | None, str]:
    """The entropy runs are held to: the held-out data's; without held-out text, that of true AR
    samples from the reference model (an `ar` run), else none (nothing is flagged)."""
    data = results.get("data") or {}
    if "entropy" in data:
        return data["entropy"], "held-out data"
    ar = [r["entropy"] for r in results["runs"] if r["sampler"] == "ar"]
    if ar:
        return sum(ar) / len(ar), "the AR reference's own samples (no held-out text was available)"
    return None, "none (no held-out text and no `ar` run: nothing is flagged)"


def low_entropy(run: dict, results: dict) -> bool:
    ref, _ = reference_entropy(results)
    return ref is not None and run["entropy"] < ref - results["config"]["entropy_tolerance"]


def repetitive_run(run: dict, results: dict) -> bool:
    """The run's Self-BLEU interval lies above the held-out text's: samples repeat each other."""
    ci = run.get("self_bleu_ci")
    return ci is not None and repetitive(ci[0], results.get("data") or {})


def ranked(run: dict, results: dict) -> bool:
    """Runs that compete: entropy within tolerance, and not `ar` (the reference scoring its own
    samples is context, not a competitor)."""
    return run["sampler"] != "ar" and not low_entropy(run, results)


def best_by_budget(results: dict) -> dict[int, dict | None]:
    """NFE budget -> the run with the lowest gen-PPL among the ranked ones."""
    out: dict[int, dict | None] = {}
    for K in results["config"]["nfe"]:
        ok = [r for r in results["runs"] if r["nfe_budget"] == K and ranked(r, results)]
        out[K] = min(ok, key=lambda r: r["gen_ppl"]) if ok else None
    return out


def _self_bleu(d: dict) -> str:
    return f"{d['self_bleu']:.1f}" if "self_bleu" in d else "-"


def _ci(v: float, ci: list[float], fmt: str = ".2f") -> str:
    return f"{v:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


def _versus(a: dict, b: dict, results: dict) -> str:
    """'a' against 'b' in words, with both numbers, whether the intervals separate them, and whether
    the comparison is entropy-matched (a lower gen-PPL bought with lower entropy is no win)."""
    (alo, ahi), (blo, bhi) = a["gen_ppl_ci"], b["gen_ppl_ci"]
    if ahi < blo:
        verdict = "better (intervals do not overlap)"
    elif bhi < alo:
        verdict = "worse (intervals do not overlap)"
    else:
        side = "lower" if a["gen_ppl"] < b["gen_ppl"] else "higher"
        verdict = side + ", within the noise (intervals overlap)"
    low = [r["label"] for r in (a, b) if low_entropy(r, results)]
    if low:
        verdict += f"; NOT entropy-matched: {' and '.join(low)} below the reference entropy"
    return (f"{a['label']} gen-PPL {a['gen_ppl']:.2f} (entropy {a['entropy']:.3f}) vs {b['label']} "
            f"{b['gen_ppl']:.2f} (entropy {b['entropy']:.3f}): {verdict}")


def headline(results: dict) -> list[str]:
    """The evaluation issue's question per gate run: does its frontier dominate `fixed` at every
    budget (gen-PPL intervals separated, entropy-matched), and does it match the best non-gate peer
    at half that peer's NFE?"""
    runs, budgets = results["runs"], results["config"]["nfe"]
    lines = []
    for label in dict.fromkeys(r["label"] for r in runs if r["sampler"] == "gate"):
        mine = {r["nfe_budget"]: r for r in runs if r["label"] == label}
        fixed = {r["nfe_budget"]: r for r in runs if r["sampler"] == "fixed"}
        shared = [K for K in budgets if K in mine and K in fixed]
        if shared:
            wins = [K for K in shared if mine[K]["gen_ppl_ci"][1] < fixed[K]["gen_ppl_ci"][0]]
            matched = [K for K in shared if not low_entropy(mine[K], results)]
            verdict = "Dominates" if wins == shared == matched else "Does NOT dominate"
            lines.append(f"- {label} vs fixed: lower gen-PPL with separated intervals at "
                         f"{len(wins)}/{len(shared)} budgets; entropy-matched at "
                         f"{len(matched)}/{len(shared)}. {verdict} fixed at matched entropy.")
        for K in budgets:
            peers = [r for r in runs
                     if r["nfe_budget"] == 2 * K and r["sampler"] != "gate" and ranked(r, results)]
            if K in mine and peers:
                best = min(peers, key=lambda r: r["gen_ppl"])
                lines.append(f"  - at NFE {K}: {mine[K]['gen_ppl']:.2f} (entropy {mine[K]['entropy']:.3f}) "
                             f"vs the best entropy-matched non-gate run at NFE {2 * K}, {best['label']}: "
                             f"{best['gen_ppl']:.2f} (entropy {best['entropy']:.3f})")
    return lines


def gate_statements(results: dict) -> list[str]:
    """At each budget: every gate run against `fixed` at the same budget and against `l2r` (NFE = n)."""
    runs = results["runs"]
    l2r = [r for r in runs if r["sampler"] == "l2r"]
    lines = []
    for K in results["config"]["nfe"]:
        here = [r for r in runs if r["nfe_budget"] == K]
        fixed = [r for r in here if r["sampler"] == "fixed"]
        for g in (r for r in here if r["sampler"] == "gate"):
            parts = [_versus(g, f, results) for f in fixed]
            parts += [_versus(g, r, results) + f" (l2r at NFE {r['nfe_budget']})" for r in l2r]
            if parts:
                lines.append(f"- NFE {K}: " + "; ".join(parts) + ".")
    return lines


def summary_table(results: dict) -> list[str]:
    rows = ["| NFE | sampler | gen-PPL [95% CI] | entropy, nats [95% CI] | distinct-2 | Self-BLEU "
            "| overwrites / step | revised | focus early / mid / late | ms / revision | tokens/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    data = results.get("data") or {}
    if "gen_ppl" in data:
        rows.append(f"| - | held-out data ({data['windows']} windows) "
                    f"| {_ci(data['gen_ppl'], data['gen_ppl_ci'])} "
                    f"| {_ci(data['entropy'], data['entropy_ci'], '.3f')} | {data['distinct_2']:.3f} "
                    f"| {_self_bleu(data)} | | | | | |")
    sweep = (results.get("frontier") or {}).get("sweep")
    key = {"temperature": "T", "top_p": "top-p"}.get(sweep or "")
    for r in sorted(results["runs"], key=lambda r: (r["nfe_budget"], r["label"], r[sweep] if sweep else 0)):
        flags = [LOW] * low_entropy(r, results) + [REPETITIVE] * repetitive_run(r, results)
        flag = (f" {key}={r[sweep]:g}" if sweep else "") + (f" ({', '.join(flags)})" if flags else "")
        f = r["focus_thirds"]
        spr = f"{1000 * r['s_per_revision']:.2f}" if r["s_per_revision"] else "-"
        tps = f"{r['tokens_per_s']:.0f}" if r["tokens_per_s"] else "-"
        rows.append(f"| {r['nfe']:.0f} | {r['label']}{flag} | {_ci(r['gen_ppl'], r['gen_ppl_ci'])} "
                    f"| {_ci(r['entropy'], r['entropy_ci'], '.3f')} | {r['distinct_2']:.3f} "
                    f"| {_self_bleu(r)} "
                    f"| {r['overwrites_per_step']:.2f} | {100 * r['fraction_revised']:.1f}% "
                    f"| {f['early']:.2f} / {f['middle']:.2f} / {f['late']:.2f} | {spr} | {tps} |")
    return rows


def summary_markdown(results: dict, plots: list[Path]) -> str:
    cfg, ck, ref = results["config"], results["checkpoint"], results["reference"]

    def model(d: dict) -> str:
        v = d.get("validation") or {}
        if not v.get("bits_per_char"):
            return f"`{d['path']}` (recipe {d.get('recipe', '?')})"
        bits = f", validation {v['bits_per_char']:.3f} bits/char ({v['estimator']})"
        return f"`{d['path']}` (recipe {d.get('recipe', '?')}{bits})"

    data = results.get("data") or {}
    sweep = results.get("frontier")
    sampling = (f"temperature {cfg['temperature']}, top-k {cfg['top_k']}, top-p {cfg['top_p']}"
                if not sweep else
                f"{'temperatures' if sweep['sweep'] == 'temperature' else 'top-p'} "
                f"{', '.join(f'{v:g}' for v in sweep['values'])} (every run at each), top-k {cfg['top_k']}"
                + (f", top-p {cfg['top_p']}" if sweep["sweep"] == "temperature" else ""))
    lines = [f"# ardm {results['kind']}", "",
             f"- Denoiser: {model(ck)}.", f"- Generative-perplexity reference (causal AR): {model(ref)}.",
             f"- {cfg['num']} samples per run, {results['tokens_per_sample']} tokens each after the prompt "
             f"{cfg['prompt']!r}; seeds {cfg['seed']}..{cfg['seed'] + cfg['num'] - 1} (sample j of every "
             f"run uses seed {cfg['seed']} + j); {sampling}; {results['sampling_dtype']}.",
             "- gen-PPL: exp(mean NLL per token) of the samples under the reference, token-weighted; "
             "entropy: per-sample unigram entropy in nats, averaged; distinct-2: unique / all character "
             "bigrams over the run's samples. Intervals: 95% percentile bootstrap over samples.",
             "- Overwrites: effective ones (a visible token changed). Focus: share of overwrites in the "
             "early / middle / late third of the sequence. ms / revision: sampling wall time / overwrites.",
             f"- git commit {results['git_commit']}; data sha256 {data.get('data_sha256', 'n/a')}; "
             f"wall time {results.get('wall_time_s', '?')} s.", ""]
    if "skipped" in data:
        lines += [f"Held-out data statistics skipped: {data['skipped']}", ""]
    lines += ["## Results", "", *summary_table(results), ""]
    lines += ["## Best at each budget", "",
              f"Lowest gen-PPL among runs whose entropy is at most {cfg['entropy_tolerance']} nats below the "
              f"reference entropy, {reference_entropy(results)[1]} (runs below are marked *low entropy* and "
              "not ranked). `ar` (the reference model's own samples, scored by itself) is context, "
              "not ranked.", ""]
    for K, r in best_by_budget(results).items():
        lines.append(f"- NFE {K}: " + (f"**{r['label']}** (gen-PPL {_ci(r['gen_ppl'], r['gen_ppl_ci'])}, "
                                        f"entropy {r['entropy']:.3f})" if r else "no eligible run"))
    if sweep:
        lines += ["", "## Quality-diversity frontier (SPEC §11.4)", "", *frontier_lines(results)]
    gate = [] if sweep else gate_statements(results)  # one run per spec and budget: a sweep has many
    if gate:
        lines += ["", "## The gate against `fixed` and `l2r`", "", *gate]
        lines += ["", "## Headline: the gate's frontier", "", *headline(results)]
    if results["skipped"]:
        lines += ["", "## Not run", ""]
        lines += [f"- {s['label']} at NFE {s['nfe_budget']}: {s['reason']}" for s in results["skipped"]]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out: Path) -> list[Path]:
    plots = plot_compare(results, out, flag=lambda r: low_entropy(r, results))
    atomic_write_text(out / "summary.md", summary_markdown(results, plots))
    return plots
