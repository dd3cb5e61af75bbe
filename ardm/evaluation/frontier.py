"""The quality-diversity frontier (SPEC §11.4): a temperature (or top-p) sweep per sampler and NFE.

One run gives one point (entropy, gen-PPL); a sweep gives each (sampler, NFE) a curve, and the
curve is read at the held-out data's entropy, where no sampler can buy perplexity with repetition:
    quality at entropy h = exp of log gen-PPL linearly interpolated in entropy between the two
    neighbouring sweep points whose entropies bracket h (the first such segment in sweep order);
    "not reached" when every point lies on one side of h (say which: a sampler whose entropy stays
    below the data's even at the highest temperature is too sharp to be entropy-matched at all).
Intervals: paired percentile bootstrap over samples (sample j of every run shares seed j, so the
same resampled indices are used for every point of a curve), the read repeated per resample.
Paired reads: two curves read on the *same* resampled seeds give an interval for their ratio, the
test of "curve A lies below curve B" (two separate intervals that merely overlap are a much weaker
statement: samplers share seeds, so much of their noise cancels in the ratio). At each read, the
lowest curve of each budget is compared so with every other curve that reaches it.
Where the runs carry Self-BLEU (samples repeating each other, which the per-sample entropy cannot
see), each read also gets the Self-BLEU interpolated the same way, and a read above the held-out
text's interval is marked: its low gen-PPL is bought with cross-sample repetition.
The needed-NFE read-out: the smallest budget at which a sampler's quality at the data's entropy is
at or below a target gen-PPL (by default the best such quality at the smallest budget), plus an
estimate between budgets by interpolating log gen-PPL in log NFE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OFFSETS = (-0.3, -0.2, -0.1, 0.0)  # nats from the data's entropy (issue 15: the range data - 0.3 .. data)
RESAMPLES = 1000


def read_at(xs: list[float], ys: list[float], x0: float) -> tuple[float | None, str | None]:
    """y at x0 along the polyline (xs[i], ys[i]) taken in the given (sweep) order, by linear
    interpolation on the first segment whose ends bracket x0. (y, None) when reached; (None,
    'below') when every x < x0, (None, 'above') when every x > x0 ('gap': no points)."""
    for i in range(len(xs) - 1):
        (xa, xb), (ya, yb) = xs[i: i + 2], ys[i: i + 2]
        if min(xa, xb) <= x0 <= max(xa, xb):
            w = 0.0 if xb == xa else (x0 - xa) / (xb - xa)
            return ya + w * (yb - ya), None
    if len(xs) == 1 and xs[0] == x0:
        return ys[0], None
    if not xs:
        return None, "gap"
    return None, ("below" if max(xs) < x0 else "above")  # a continuous polyline has no gap


def _point_stats(runs: list[dict], idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean entropy and log gen-PPL (token-weighted) of each run, over samples `idx` ([R, n]
    resampled indices) or all samples (idx None). Shapes [P] or [R, P]."""
    ent, logp = [], []
    for r in runs:
        h = np.array([s["entropy"] for s in r["samples"]], dtype=np.float64)
        nll = np.array([s["gen_nll"] for s in r["samples"]], dtype=np.float64)
        tok = np.array([s["gen_tokens"] for s in r["samples"]], dtype=np.float64)
        if idx is None:
            ent.append(h.mean())
            logp.append(nll.sum() / max(tok.sum(), 1.0))
        else:
            ent.append(h[idx].mean(1))
            logp.append(nll[idx].sum(1) / np.maximum(tok[idx].sum(1), 1.0))
    return np.array(ent).T, np.array(logp).T


def read_curve(runs: list[dict], h: float, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """Quality of one curve (runs in sweep order) at entropy h, with a paired bootstrap interval;
    `reached_share` is the share of resamples whose curve reaches h (the interval uses those)."""
    ent, logp = _point_stats(runs, None)
    y, side = read_at(ent.tolist(), logp.tolist(), h)
    out: dict[str, Any] = {"entropy": round(h, 4), "reached": y is not None}
    if y is None:
        return {**out, "side": side}
    n = min(len(r["samples"]) for r in runs)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    ent_b, logp_b = _point_stats(runs, idx)
    reads = [read_at(e.tolist(), lp.tolist(), h)[0] for e, lp in zip(ent_b, logp_b, strict=True)]
    ok = np.array([v for v in reads if v is not None])
    lo, hi = np.quantile(ok, [0.025, 0.975]) if len(ok) else (math.nan, math.nan)
    return {**out, "gen_ppl": math.exp(y), "gen_ppl_ci": [math.exp(lo), math.exp(hi)],
            "reached_share": len(ok) / resamples}


def aligned(runs: list[dict]) -> bool:
    """Every run's samples come from the same seeds in the same order (what pairing needs)."""
    seeds = [[s.get("seed") for s in r["samples"]] for r in runs]
    n = min(len(x) for x in seeds)
    return all(x[:n] == seeds[0][:n] for x in seeds)


def read_ratio(a: list[dict], b: list[dict], h: float, seed: int = 0,
               resamples: int = RESAMPLES) -> dict | None:
    """Curve `a` against curve `b` at entropy h, read on the same resampled seeds: the gen-PPL ratio
    a / b with its 95% paired interval. None where either curve misses h or the seeds differ."""
    (ea, la), (eb, lb) = _point_stats(a, None), _point_stats(b, None)
    ya, yb = read_at(ea.tolist(), la.tolist(), h)[0], read_at(eb.tolist(), lb.tolist(), h)[0]
    if ya is None or yb is None or not aligned(a + b):
        return None
    n = min(len(r["samples"]) for r in a + b)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    (ea, la), (eb, lb) = _point_stats(a, idx), _point_stats(b, idx)
    diffs = [(pa - pb) for i in range(resamples)
             if (pa := read_at(ea[i].tolist(), la[i].tolist(), h)[0]) is not None
             and (pb := read_at(eb[i].tolist(), lb[i].tolist(), h)[0]) is not None]
    lo, hi = np.quantile(diffs, [0.025, 0.975]) if diffs else (math.nan, math.nan)
    return {"ratio": math.exp(ya - yb), "ratio_ci": [math.exp(lo), math.exp(hi)],
            "reached_share": len(diffs) / resamples}


def paired_reads(groups: dict[tuple[str, int], list[dict]], h_data: float, seed: int = 0) -> list[dict]:
    """At each read and budget: the lowest curve against every other curve that reaches the read."""
    out = []
    for K in sorted({k for _, k in groups}):
        here = {lab: runs for (lab, k), runs in groups.items() if k == K}
        for d in OFFSETS:
            pts = {lab: read_at(*(x.tolist() for x in _point_stats(runs, None)), h_data + d)[0]
                   for lab, runs in here.items()}
            reached = sorted((v, lab) for lab, v in pts.items() if v is not None)
            if len(reached) < 2:
                continue
            best = reached[0][1]
            for _, other in reached[1:]:
                r = read_ratio(here[best], here[other], h_data + d, seed)
                if r is not None:
                    out.append({"nfe_budget": K, "offset": d, "best": best, "other": other, **r})
    return out


def groups_of(runs: list[dict], sweep: str) -> dict[tuple[str, int], list[dict]]:
    """Runs per (label, NFE budget), in sweep order: one curve each."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["label"], r["nfe_budget"]), []).append(r)
    return {k: sorted(v, key=lambda r: r[sweep]) for k, v in groups.items()}


def curves(results: dict, h_data: float | None, sweep: str, seed: int = 0) -> list[dict]:
    """One curve per (label, NFE budget): its sweep points and its reads at h_data + OFFSETS."""
    out = []
    for (label, K), runs in groups_of(results["runs"], sweep).items():
        keys = ("entropy", "entropy_ci", "gen_ppl", "gen_ppl_ci", "self_bleu", "self_bleu_ci")
        points = [{"value": r[sweep], **{k: r[k] for k in keys if k in r}} for r in runs]
        reads = [] if h_data is None else [{"offset": d, **read_curve(runs, h_data + d, seed)}
                                           for d in OFFSETS]
        if all("self_bleu" in r for r in runs):
            for a in reads:
                if a["reached"]:
                    a["self_bleu"] = read_at([p["entropy"] for p in points], [r["self_bleu"] for r in runs],
                                             a["entropy"])[0]
        out.append({"label": label, "sampler": runs[0]["sampler"], "nfe_budget": K, "points": points,
                    "reads": reads})
    return out


def at_data(curve: dict) -> dict | None:
    """A curve's read at the data's own entropy (offset 0), or None without held-out entropy."""
    return next((r for r in curve["reads"] if r["offset"] == 0.0), None)


def default_target(cs: list[dict]) -> float | None:
    """The best quality at the data's entropy at the smallest budget where any curve reaches it."""
    for K in sorted({c["nfe_budget"] for c in cs}):
        q = [a["gen_ppl"] for c in cs if c["nfe_budget"] == K and (a := at_data(c)) and a["reached"]]
        if q:
            return min(q)
    return None


def needed_nfe(cs: list[dict], target: float) -> list[dict]:
    """Per label: the smallest budget whose quality at the data's entropy is <= target, and an
    estimate between the bracketing budgets (log gen-PPL linear in log NFE); None when no budget
    reaches it (or the quality at the data's entropy is not reached at any budget)."""
    out = []
    for label in dict.fromkeys(c["label"] for c in cs):
        q = sorted((c["nfe_budget"], a["gen_ppl"]) for c in cs
                   if c["label"] == label and (a := at_data(c)) and a["reached"])
        first = next((i for i, (_, v) in enumerate(q) if v <= target), None)
        row: dict[str, Any] = {"label": label, "budgets_read": [k for k, _ in q], "nfe": None,
                               "nfe_estimate": None}
        if first is not None:
            row["nfe"] = q[first][0]
            row["nfe_estimate"] = float(q[first][0])
            if first > 0:
                (ka, va), (kb, vb) = q[first - 1], q[first]
                w = (math.log(va) - math.log(target)) / (math.log(va) - math.log(vb))
                row["nfe_estimate"] = 2 ** (math.log2(ka) + w * (math.log2(kb) - math.log2(ka)))
        out.append(row)
    return out


def ranking(cs: list[dict]) -> list[dict]:
    """Per budget: curves ordered by quality at the data's entropy; whether the first dominates the
    second (95% intervals do not overlap, SPEC §11.4), and the curves that do not reach it."""
    out = []
    for K in sorted({c["nfe_budget"] for c in cs}):
        here = [(c["label"], a) for c in cs if c["nfe_budget"] == K and (a := at_data(c))]
        ok = sorted(((lab, a) for lab, a in here if a["reached"]), key=lambda t: t[1]["gen_ppl"])
        dom = len(ok) > 1 and ok[0][1]["gen_ppl_ci"][1] < ok[1][1]["gen_ppl_ci"][0]
        out.append({"nfe_budget": K, "order": [lab for lab, _ in ok], "first_dominates": bool(dom),
                    "not_reached": {lab: a["side"] for lab, a in here if not a["reached"]}})
    return out


def build_frontier(results: dict, h_data: float | None, h_source: str, sweep: str,
                   target: float | None = None, seed: int = 0) -> dict:
    """results["frontier"]: the curves, their reads at the data's entropy, needed NFE, ranking."""
    cs = curves(results, h_data, sweep, seed)
    given = target is not None
    target = target if given else default_target(cs)
    return {"sweep": sweep, "values": sorted({r[sweep] for r in results["runs"]}),
            "data_entropy": h_data, "data_entropy_source": h_source, "offsets": list(OFFSETS),
            "quality_target": target,
            "quality_target_source": "given" if given else "best quality at the data's entropy at the "
                                                            "smallest budget where any curve reaches it",
            "curves": cs, "needed_nfe": needed_nfe(cs, target) if target is not None else [],
            "ranking": ranking(cs),
            "paired": [] if h_data is None else paired_reads(groups_of(results["runs"], sweep), h_data, seed)}


SIDE = {"below": "entropy below it at every point of the sweep",
        "above": "entropy above it at every point of the sweep", "gap": "no points"}


REPEATS = "†"  # a read whose Self-BLEU lies above the held-out text's 95% interval


def repetitive(self_bleu: float | None, data: dict) -> bool:
    """Self-BLEU above the held-out windows' 95% interval (False when either is unknown)."""
    ci = data.get("self_bleu_ci")
    return self_bleu is not None and ci is not None and self_bleu > ci[1]


def _cell(a: dict, data: dict) -> str:
    if not a["reached"]:
        return "below" if a["side"] == "below" else "above" if a["side"] == "above" else "-"
    lo, hi = a["gen_ppl_ci"]
    share = "" if a["reached_share"] >= 0.95 else f" ({100 * a['reached_share']:.0f}% of resamples)"
    mark = f" {REPEATS} Self-BLEU {a['self_bleu']:.0f}" if repetitive(a.get("self_bleu"), data) else ""
    return f"{a['gen_ppl']:.2f} [{lo:.2f}, {hi:.2f}]{share}{mark}"


def frontier_lines(results: dict) -> list[str]:
    """The frontier in markdown: quality at the data's entropy (and 0.1-0.3 nats below) per sampler
    and NFE, the NFE each sampler needs for the target quality, and the ranking per budget."""
    f = results["frontier"]
    name = "temperature" if f["sweep"] == "temperature" else "top-p"
    values = ", ".join(f"{v:g}" for v in f["values"])
    lines = [f"Sweep: {name} {values}; every sampler spec at every NFE budget and {name}. "
             "Each (sampler, NFE) curve is read by interpolating log gen-PPL linearly in entropy between "
             "neighbouring sweep points; 95% paired bootstrap intervals over samples. *below* / *above*: "
             "the curve's entropy stays below / above that entropy over the whole sweep (not reached).", ""]
    if f["data_entropy"] is None:
        return lines + [f"No reference entropy ({f['data_entropy_source']}): nothing to read the curves at."]
    h = f["data_entropy"]
    heads = [f"H{d:+.1f}" if d else "at H (data)" for d in f["offsets"]]
    lines += [f"H = {h:.3f} nats, the entropy of {f['data_entropy_source']}.", "",
              f"| NFE | sampler | entropy swept ({name} {f['values'][0]:g} -> {f['values'][-1]:g}) | "
              + " | ".join(f"gen-PPL {x}" for x in heads) + " |",
              "|---|---|---|" + "---|" * len(heads)]
    data = results.get("data") or {}
    for c in sorted(f["curves"], key=lambda c: (c["nfe_budget"], c["label"])):
        ents = [p["entropy"] for p in c["points"]]
        lines.append(f"| {c['nfe_budget']} | {c['label']} | {ents[0]:.3f} -> {ents[-1]:.3f} | "
                     + " | ".join(_cell(a, data) for a in c["reads"]) + " |")
    if "self_bleu_ci" in data:
        lo, hi = data["self_bleu_ci"]
        lines += ["", f"{REPEATS}: at that read the samples repeat each other more than held-out text does "
                      "(Self-BLEU, interpolated like gen-PPL, above the held-out windows' "
                      f"{data['self_bleu']:.1f} [{lo:.1f}, {hi:.1f}]): a gen-PPL bought with cross-sample "
                      "repetition, which the per-sample entropy does not see."]
    lines += ["", *ranking_lines(f), *paired_lines(f.get("paired", []), "gen-PPL ratio")]
    if f["quality_target"] is not None:
        lines += ["", f"NFE needed for gen-PPL <= {f['quality_target']:.2f} at the data's entropy "
                      f"(target: {f['quality_target_source']}; estimate: log gen-PPL linear in log NFE "
                      "between the bracketing budgets):", "",
                  "| sampler | NFE needed | estimate | budgets read |",
                  "|---|---|---|---|"]
        for r in f["needed_nfe"]:
            top = max(r["budgets_read"], default=None)
            need = f"{r['nfe']}" if r["nfe"] else (f"> {top}" if top else "not reached at any budget")
            est = f"{r['nfe_estimate']:.1f}" if r["nfe_estimate"] else "-"
            read = ", ".join(map(str, r["budgets_read"])) or "-"
            lines.append(f"| {r['label']} | {need} | {est} | {read} |")
    return lines


def ranking_lines(f: dict) -> list[str]:
    """One line per budget: who is ahead at the data's entropy, by how much, and who never gets there."""
    by = {(c["label"], c["nfe_budget"]): at_data(c) for c in f["curves"]}
    lines = []
    for r in f["ranking"]:
        K = r["nfe_budget"]
        order = " < ".join(f"{lab} {by[(lab, K)]['gen_ppl']:.2f}" for lab in r["order"]) or "none reaches it"
        verdict = ""
        if len(r["order"]) > 1:
            verdict = (f"; {r['order'][0]} dominates (95% intervals separated)" if r["first_dominates"]
                       else f"; {r['order'][0]} and {r['order'][1]} are within the noise (intervals overlap)")
        missing = "; ".join(f"{lab}: {SIDE[side]}" for lab, side in r["not_reached"].items())
        lines.append(f"- NFE {K}, gen-PPL at the data's entropy: {order}{verdict}."
                     + (f" Not reached: {missing}." if missing else ""))
    return lines


def paired_lines(paired: list[dict], what: str, scale=lambda ratio: ratio) -> list[str]:
    """Paired reads as a table: per budget and read, the lowest curve against each other curve, as
    scale(gen-PPL ratio) (the ratio itself; math.log2 gives a bits-per-token difference)."""
    if not paired:
        return []
    lines = ["", f"Paired reads (both curves on the same resampled seeds): {what} of the lowest curve to "
             f"each other curve, 95% paired bootstrap interval; *: the interval excludes {scale(1.0):g} (no "
             "difference).", "", f"| NFE | read | lowest | against: {what} |", "|---|---|---|---|"]
    rows: dict[tuple[int, float, str], list[str]] = {}
    for r in paired:
        v, lo, hi = (scale(x) for x in (r["ratio"], *r["ratio_ci"]))
        rows.setdefault((r["nfe_budget"], r["offset"], r["best"]), []).append(
            f"{r['other']} {v:.3f} [{lo:.3f}, {hi:.3f}]{'*' if hi < scale(1.0) else ''}")
    for (K, d, best), cells in rows.items():
        lines.append(f"| {K} | {f'H{d:+.1f}' if d else 'H'} | {best} | {'; '.join(cells)} |")
    return lines
