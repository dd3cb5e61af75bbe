"""`ardm compare` / `ardm ablate`: every sampler at every NFE budget on one denoiser (SPEC §8.3).

Same prompt, same seeds (sample j of every run uses seed + j), same temperature / top-k / top-p for
every sampler. Quality is the generative perplexity of the samples under a causal reference model
trained by our `-ar` recipes, always beside the samples' unigram entropy and distinct-n, so that a
sampler cannot win by repeating itself. Revisions come from each run's trace (ardm.evaluation.metrics).

Samplers are named by specs (`ardm.generation.specs`: `NAME[:KEY=VALUE...]`, optionally labelled
`LABEL=SPEC`; `gate` is calibrated at each budget, SPEC §6.8). `ar` runs true AR decoding on the
reference model itself (the causal baseline at NFE = n).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ardm.core.checkpoint import Loaded, atomic_write_text, git_commit, load
from ardm.errors import ArdmError
from ardm.evaluation.metrics import (
    bootstrap_ci,
    distinct_n,
    focus_thirds,
    generative_nll,
    perplexity,
    ppl_ci,
    revision_stats,
    self_bleu_stats,
    unigram_entropy,
)
from ardm.evaluation.viewer import sample_page
from ardm.generation.blocks import block_steps
from ardm.generation.gate.calibration import calibrate
from ardm.generation.loop import generate
from ardm.generation.registry import SAMPLERS, Sampler
from ardm.generation.specs import CALIBRATION_SEED_OFFSET, SamplerSpec

RESULTS_FORMAT = "ardm-compare"
RESULTS_VERSION = 1
DISTINCT_N = (1, 2, 3)


@dataclass
class CompareConfig:
    checkpoint: str
    reference: str  # causal AR checkpoint for generative perplexity
    samplers: list[str]
    nfe: list[int]
    num: int = 32
    tokens: int = 0  # generated tokens per sample (0: the largest budget, so l2r/ar run at it)
    prompt: str = "\n"
    seed: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    batch_size: int = 32
    data: str | None = None  # held-out text for the data's own entropy / gen-PPL (default: ckpt's)
    entropy_tolerance: float = 0.1  # nats below the data's entropy that flag a run as "low entropy"
    calibration_num: int = 32
    device: str = "cpu"
    kind: str = "compare"
    # the quality-diversity frontier (SPEC §11.4): every run at each value; None = one run at
    # `temperature` / `top_p` as before (results.json then has no sweep keys at all)
    temperatures: list[float] | None = None
    top_ps: list[float] | None = None
    quality_target: float | None = None  # gen-PPL for the needed-NFE read-out (default: see frontier)

    def __post_init__(self) -> None:
        if not self.samplers:
            raise ArdmError("no samplers given")
        if not self.nfe or min(self.nfe) < 1:
            raise ArdmError(f"NFE budgets must be >= 1, got {self.nfe}")
        for name in ("num", "batch_size", "calibration_num"):
            if getattr(self, name) < 1:
                raise ArdmError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.tokens < 0:
            raise ArdmError(f"tokens must be >= 0, got {self.tokens}")
        if self.entropy_tolerance < 0:
            raise ArdmError(f"entropy tolerance must be >= 0, got {self.entropy_tolerance}")
        self.nfe = sorted(set(self.nfe))
        if self.temperatures is not None and self.top_ps is not None:
            raise ArdmError("give one sweep: --temperatures or --top-ps, not both")
        if self.temperatures is not None:
            self.temperatures = _sweep(self.temperatures, "temperatures", lambda v: v > 0, "> 0")
        if self.top_ps is not None:
            self.top_ps = _sweep(self.top_ps, "top-ps", lambda v: 0 < v <= 1, "in (0, 1]")
        if self.quality_target is not None and not self.quality_target > 0:
            raise ArdmError(f"quality target must be a gen-PPL > 0, got {self.quality_target}")

    @property
    def sweep(self) -> str | None:
        """The run field a sweep varies ('temperature' / 'top_p'), or None (one run per spec and K)."""
        return "temperature" if self.temperatures else "top_p" if self.top_ps else None

    def points(self) -> list[tuple[float | None, float]]:
        """(temperature, top-p) of each run of a spec at a budget; temperature None: the spec's own."""
        if self.temperatures:
            return [(t, self.top_p) for t in self.temperatures]
        return [(None, p) for p in self.top_ps or [self.top_p]]

    def as_dict(self) -> dict:
        """The config as results.json records it; without a sweep, exactly the keys it always had."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if v is not None or k not in SWEEP_KEYS}


SWEEP_KEYS = ("temperatures", "top_ps", "quality_target")


def _sweep(values, what: str, ok, bound: str) -> list[float]:
    """Sorted unique floats of a sweep list; ArdmError for an empty list or a value out of bounds."""
    try:
        out = sorted({float(v) for v in values})
    except (TypeError, ValueError):
        raise ArdmError(f"--{what} must be comma-separated numbers, got {values!r}") from None
    if not out:
        raise ArdmError(f"no {what} given")
    bad = [v for v in out if not (ok(v) and math.isfinite(v))]
    if bad:
        raise ArdmError(f"--{what} must all be {bound}, got {', '.join(f'{v:g}' for v in bad)}")
    return out


@dataclass
class Models:
    denoiser: Loaded
    reference: Loaded
    prompt: torch.Tensor  # [P] prompt ids (denoiser tokenizer)
    n: int  # generated tokens per sample
    gate_stats: dict[tuple, Any] = field(default_factory=dict)  # (K, signal options) -> SignalStats


def _load_models(cfg: CompareConfig) -> Models:
    den = load(cfg.checkpoint, device=cfg.device)
    ref = load(cfg.reference, device=cfg.device)
    if not ref.model.cfg.causal:
        raise ArdmError(f"--reference {cfg.reference} is not a causal (AR) model; "
                        "train one with an `-ar` recipe")
    if den.model.cfg.causal:
        raise ArdmError(f"--checkpoint {cfg.checkpoint} is a causal model; compare runs diffusion samplers")
    prompt = torch.tensor(den.tokenizer.encode(cfg.prompt), dtype=torch.long)
    n = cfg.tokens or max(cfg.nfe)
    if len(prompt) + n > den.model.cfg.max_len:
        raise ArdmError(f"prompt ({len(prompt)}) + {n} generated tokens exceed the denoiser's context "
                        f"({den.model.cfg.max_len})")
    return Models(den, ref, prompt, n)


def _sampler(spec: SamplerSpec, K: int, m: Models, cfg: CompareConfig) -> Sampler:
    # one calibration per budget and signal definition, shared by the specs
    spec = spec.resolve(m.denoiser.path)
    key = (K, *sorted(spec.signal_options.items()))
    if spec.calibrated and key not in m.gate_stats:
        m.gate_stats[key] = calibrate(m.denoiser.model, length=len(m.prompt) + m.n, steps=K,
                                      num=cfg.calibration_num, batch=cfg.batch_size, prompt=m.prompt,
                                      seed=cfg.seed + CALIBRATION_SEED_OFFSET, **spec.signal_options)
    return spec.build(m.denoiser.path, cfg.device, m.gate_stats.get(key))


def _run(spec: SamplerSpec, K: int, m: Models, cfg: CompareConfig,
         point: tuple[float | None, float] | None = None, pages: Path | None = None) -> dict:
    """Generate cfg.num samples with one sampler at budget K (and a sweep's (temperature, top-p)
    point, if any); per-sample and aggregate metrics. With `pages`, a viewer page of the first
    sample is written there (report.html links it, issue 19)."""
    causal = spec.name == "ar"
    loaded = m.reference if causal else m.denoiser
    prompt = torch.tensor(loaded.tokenizer.encode(cfg.prompt), dtype=torch.long)
    sampler = _sampler(spec, K, m, cfg)
    sampler.check_model(loaded.model.cfg.attention, loaded.config.noise.kind)
    length = len(prompt) + m.n
    swept_t, top_p = point or (None, cfg.top_p)
    temperature = swept_t if swept_t is not None else (
        cfg.temperature if spec.temperature is None else spec.temperature)
    samples, traces, wall, page = [], [], 0.0, {}
    for first in range(0, cfg.num, cfg.batch_size):
        batch = min(cfg.batch_size, cfg.num - first)
        g = generate(loaded.model, sampler, length=length, steps=K, batch=batch, prompt=prompt,
                     seed=cfg.seed + first, top_k=cfg.top_k, top_p=top_p, temperature=temperature,
                     trace=True, **spec.loop)
        wall += g.wall_time_s
        traces.append({**revision_stats(g.trace), "batch": g.tokens.shape[0]})
        if pages is not None and first == 0:
            sweep = f"-T{temperature:g}-p{top_p:g}" if point else ""  # a sweep's runs share label and K
            name = re.sub(r"[^\w.-]+", "_", f"{spec.label}-nfe{K}{sweep}")
            sample_page(g.trace, loaded.tokenizer, pages / f"{name}.html", checkpoint=str(loaded.path))
            page = {"viewer": f"{pages.name}/{name}.html"}
        for b, row in enumerate(g.tokens.tolist()):
            target = row[len(prompt):]
            samples.append({"seed": cfg.seed + first + b, "text": loaded.tokenizer.decode(target),
                            "tokens": target, **g.row_counts(b)})
    nll = generative_nll(m.reference.model, m.reference.tokenizer, [s["text"] for s in samples], cfg.prompt,
                         batch_size=cfg.batch_size, device=cfg.device)
    for s, (v, t) in zip(samples, nll, strict=True):
        s["gen_nll"], s["gen_tokens"] = round(v, 4), t
        s["entropy"] = round(unigram_entropy(s.pop("tokens")), 4)
    swept = {"top_p": top_p} if cfg.sweep else {}
    return {"label": spec.label, "sampler": spec.name, "options": dataclasses.asdict(sampler.options),
            "temperature": temperature, **swept, **({"loop": spec.loop} if spec.loop else {}),
            "nfe_budget": K, **_aggregate(samples, traces, nll, wall, cfg), **page, "samples": samples}


def _aggregate(samples: list[dict], traces: list[dict], nll, wall: float, cfg: CompareConfig) -> dict:
    w = np.array([t["batch"] for t in traces], dtype=np.float64)  # traces are per batch: weight by size
    ent, texts = [s["entropy"] for s in samples], [s["text"] for s in samples]
    eff = np.array([s["overwrites_effective"] for s in samples], dtype=np.float64)
    steps = np.array([s["nfe"] for s in samples], dtype=np.float64)
    revised = float(np.average([t["fraction_revised"] for t in traces], weights=w))
    by_pos = np.average(np.array([t["rate_by_position"] for t in traces]), axis=0, weights=w)
    per_step = _mean_ragged([t["overwrites_per_step"] for t in traces], w)
    gen_tokens = sum(s["gen_tokens"] for s in samples)
    heat = np.average(np.array([_pad_rows(t["heatmap"], len(per_step)) for t in traces]), axis=0, weights=w)
    return {
        "nfe": float(steps.mean()), "token_forwards": float(np.mean([s["token_forwards"] for s in samples])),
        "gen_ppl": perplexity(nll), "gen_ppl_ci": list(ppl_ci(nll, seed=cfg.seed)),
        "entropy": float(np.mean(ent)), "entropy_ci": list(bootstrap_ci(ent, seed=cfg.seed)),
        **{f"distinct_{k}": distinct_n(texts, k) for k in DISTINCT_N},
        **self_bleu_stats(texts, seed=cfg.seed),
        "overwrites_per_sample": float(eff.mean()),
        "overwrites_per_sample_ci": list(bootstrap_ci(eff, seed=cfg.seed)),
        "overwrites_per_step": float((eff / steps).mean()),
        "overwrites_selected_per_sample": float(np.mean([s["overwrites_selected"] for s in samples])),
        "fraction_revised": revised, "focus_thirds": focus_thirds(by_pos),
        "rate_by_position": by_pos.tolist(),
        "overwrites_by_step": per_step, "heatmap": heat.tolist(),
        "wall_time_s": round(wall, 4), "tokens_per_s": gen_tokens / wall if wall else None,
        "s_per_revision": wall / float(eff.sum()) if eff.sum() else None,
    }


def _pad_rows(rows: list[list[float]], k: int) -> np.ndarray:
    a = np.zeros((k, len(rows[0]) if rows else 0))
    if rows:
        a[: len(rows)] = rows
    return a


def _mean_ragged(lists: list[list[float]], w: np.ndarray) -> list[float]:
    """Weighted mean of per-step lists of different lengths (a batch may stop early: zeros after)."""
    k = max(len(x) for x in lists)
    a = np.array([x + [0.0] * (k - len(x)) for x in lists])
    return np.average(a, axis=0, weights=w).tolist()


def heldout_windows(text: str, prompt: str, n: int, num: int, tok) -> list[str]:
    """Up to `num` non-overlapping windows of exactly n tokens of `text`, each starting right after
    an occurrence of `prompt` (so they are scored exactly like samples that follow the prompt)."""
    starts, i = [], 0
    while len(starts) < num:
        i = text.find(prompt, i) if prompt else i
        if i < 0:
            break
        i += len(prompt)
        starts.append(i)
        i += n * 4  # non-overlapping
    ids = [tok.encode(text[s: s + n * 16])[:n] for s in starts]
    return [tok.decode(w) for w in ids if len(w) == n]


def data_reference(m: Models, cfg: CompareConfig) -> dict | None:
    """The same statistics on real held-out text: cfg.num windows of n tokens that each start after
    the prompt text (so they are scored exactly like samples), from the end of the validation split."""
    from ardm.data.sources import load_corpus_like

    try:
        corpus = load_corpus_like(m.denoiser.config.data, cfg.data)
    except ArdmError as e:
        return {"skipped": str(e)}
    tok = m.denoiser.tokenizer
    windows = heldout_windows(corpus.val, cfg.prompt, m.n, cfg.num, tok)
    if not windows:
        return {"skipped": f"no held-out window of {m.n} tokens after {cfg.prompt!r} in {corpus.source}"}
    nll = generative_nll(m.reference.model, m.reference.tokenizer, windows, cfg.prompt,
                         batch_size=cfg.batch_size, device=cfg.device)
    ent = [unigram_entropy(tok.encode(w)) for w in windows]
    return {"source": corpus.source, "data_sha256": corpus.sha256, "windows": len(windows),
            "gen_ppl": perplexity(nll), "gen_ppl_ci": list(ppl_ci(nll, seed=cfg.seed)),
            "entropy": float(np.mean(ent)), "entropy_ci": list(bootstrap_ci(ent, seed=cfg.seed)),
            **{f"distinct_{k}": distinct_n(windows, k) for k in DISTINCT_N},
            **self_bleu_stats(windows, seed=cfg.seed)}


def run_compare(cfg: CompareConfig, out: Path, progress: bool = True) -> dict:
    """Every sampler at every budget (and every point of a sweep); writes results.json, summary.md,
    plots, report.html and viewer/ (a page of each run's first sample) into `out`, results.json last
    and atomically (a failed run leaves none)."""
    from ardm.evaluation.frontier import build_frontier
    from ardm.evaluation.html_report import write_html_report
    from ardm.evaluation.report import reference_entropy, write_report

    specs = [SamplerSpec.parse(s) for s in cfg.samplers]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ArdmError(f"sampler labels must be unique, got {labels}")
    fixed_t = [s.label for s in specs if s.temperature is not None]
    if cfg.temperatures and fixed_t:
        raise ArdmError("--temperatures sweeps every sampler's temperature; "
                        f"drop temperature= from {fixed_t}")
    m = _load_models(cfg)
    for s in specs:  # a missing trained gate or an unusable model fails before any sampling
        loaded = m.reference if s.name == "ar" else m.denoiser
        sampler = s.build(loaded.path, cfg.device)
        sampler.check_model(loaded.model.cfg.attention, loaded.config.noise.kind)
        for K in cfg.nfe if s.loop else ():  # so does a block size no budget can honour
            block_steps(loaded.model.cfg, sampler, len(m.prompt) + m.n, len(m.prompt), K, **s.loop)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT, "format_version": RESULTS_VERSION, "kind": cfg.kind,
        "config": cfg.as_dict(), "git_commit": git_commit(),
        "checkpoint": {"path": str(m.denoiser.path), **_provenance(m.denoiser)},
        "reference": {"path": str(m.reference.path), **_provenance(m.reference)},
        "tokens_per_sample": m.n, "prompt_tokens": len(m.prompt),
        "seeds": [cfg.seed + j for j in range(cfg.num)], "sampling_dtype": "float64 Gumbel-max (SPEC §6.11)",
        "data": data_reference(m, cfg), "runs": [], "skipped": []}
    out = Path(out)
    (out / "viewer").mkdir(parents=True, exist_ok=True)
    done = _resume(out / PARTIAL, results)
    jobs = [(s, K) for K in cfg.nfe for s in specs]
    for spec, K in tqdm(jobs, desc=cfg.kind, disable=not progress):
        try:  # l2r / ar need K = n exactly: skipped (and said so) at other budgets
            SAMPLERS[spec.name]().num_steps(m.n, K)
        except ArdmError as e:
            results["skipped"].append({"label": spec.label, "nfe_budget": K, "reason": str(e)})
            continue
        for point in tqdm(cfg.points(), desc=f"{spec.label} @ {K}", leave=False,
                          disable=not progress or not cfg.sweep):
            key = json.dumps([spec.label, K, *(point or ())])
            if key not in done:
                done[key] = _run(spec, K, m, cfg, point if cfg.sweep else None, pages=out / "viewer")
                _save_partial(out / PARTIAL, results, key, done[key])
            results["runs"].append(done[key])
    if not results["runs"]:
        raise ArdmError("no sampler could run at any of the budgets: " +
                        "; ".join(s["reason"] for s in results["skipped"][:3]))
    if cfg.sweep:
        h, source = reference_entropy(results)
        results["frontier"] = build_frontier(results, h, source, cfg.sweep, cfg.quality_target, cfg.seed)
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    write_html_report(results, out, write_report(results, out))
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    (out / PARTIAL).unlink(missing_ok=True)
    return results


PARTIAL = "runs.partial.jsonl"  # finished runs of an unfinished compare; gone once results.json is written


def _header(results: dict) -> str:
    """What must match for finished runs to be reused: config, code and models."""
    return json.dumps({k: results[k] for k in ("config", "git_commit", "checkpoint", "reference")},
                      sort_keys=True)


def _resume(path: Path, results: dict) -> dict[str, dict]:
    """Runs a killed compare into the same folder finished, when it ran the same config, commit and
    models (a long sweep then continues where it stopped); otherwise none."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != _header(results):
        path.unlink()  # another config, commit or model: start over
        return {}
    done = {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        done[rec["key"]] = rec["run"]
    return done


def _save_partial(path: Path, results: dict, key: str, run: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        if f.tell() == 0:
            f.write(_header(results) + "\n")
        f.write(json.dumps({"key": key, "run": run}) + "\n")


def _provenance(loaded: Loaded) -> dict:
    meta = loaded.meta
    keep = ("recipe", "git_commit", "data_sha256", "data_source", "step", "params")
    out = {k: meta[k] for k in keep if k in meta}
    if "validation" in meta:
        keys = ("estimator", "bits_per_char", "bits_per_char_se")
        out["validation"] = {k: meta["validation"].get(k) for k in keys}
    return out
