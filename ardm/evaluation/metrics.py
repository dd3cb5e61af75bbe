"""Sample-quality and revision metrics of the evaluation protocol (SPEC §8.2). Pure functions.

    unigram_entropy     per-sample token entropy, nats (kuleshov-group/remdm main.py's statistic)
    distinct_n          unique n-grams / all n-grams over a set of samples (Li et al. 2016)
    self_bleu           each sample's BLEU against all the others (Texygen, Zhu et al. 2018):
                        samples that repeat each other, which a per-sample entropy does not see
    generative_nll      per-sample NLL of texts under a causal reference model (gen-PPL = exp of
                        the token-weighted mean); always reported beside the entropy
    revision_stats      overwrites per step, fraction of positions ever revised, positional focus by
                        thirds and by position, a steps x positions heatmap, from a generation trace
    bootstrap_ci        percentile bootstrap of a statistic of per-sample values
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ardm.core.denoiser import Denoiser
from ardm.core.noise import token_nll
from ardm.errors import ArdmError


def unigram_entropy(tokens: Sequence[int]) -> float:
    """H = -sum_v (c_v/n) ln(c_v/n) over the token counts of one sample, in nats (0 when empty)."""
    n = len(tokens)
    if n == 0:
        return 0.0
    counts = np.fromiter(Counter(tokens).values(), dtype=np.float64)
    p = counts / n
    return float(-(p * np.log(p)).sum())


def distinct_n(samples: Sequence[Sequence[int]], n: int) -> float:
    """Unique n-grams / total n-grams pooled over all samples (0 when there are none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: Sequence[str]) -> list[float] | None:
    """Per text, its sentence BLEU (sacrebleu, 13a words, 0-100) with every other text as a
    reference (Texygen's Self-BLEU). A per-sample unigram entropy cannot see samples that copy one
    template ("KING RICHARD III:" opening most of them): Self-BLEU can (SPEC §11.4, gen-PPL is
    gameable). None when sacrebleu is not installed (the `test` / `seq2seq` extras) or < 2 texts."""
    try:
        import sacrebleu
    except ImportError:
        return None
    if len(texts) < 2:
        return None
    return [min(sacrebleu.sentence_bleu(t, [u for j, u in enumerate(texts) if j != i]).score, 100.0)
            for i, t in enumerate(texts)]  # min: sacrebleu's float sum can give 100.00000000000004


def self_bleu_stats(texts: Sequence[str], seed: int = 0) -> dict:
    """{"self_bleu": mean, "self_bleu_ci": bootstrap interval over texts}, or {} without sacrebleu."""
    scores = self_bleu(texts)
    if scores is None:
        return {}
    return {"self_bleu": float(np.mean(scores)), "self_bleu_ci": list(bootstrap_ci(scores, seed=seed))}


@torch.no_grad()
def generative_nll(model: Denoiser, tokenizer, texts: Sequence[str], context: str, *, batch_size: int = 32,
                   device: str = "cpu") -> list[tuple[float, int]]:
    """(NLL in nats, token count) of each text given `context` under a causal model (SPEC §8.2).

    Texts are re-encoded with the reference's own tokenizer, so the samples' model need not share
    it. The context (e.g. the prompt, at least one token) conditions the first token; texts longer
    than the reference's context window are refused rather than silently truncated.
    """
    if not model.cfg.causal:
        raise ArdmError("the generative-perplexity reference must be a causal (AR) model")
    ctx = tokenizer.encode(context)
    if not ctx:
        raise ArdmError("generative perplexity needs a non-empty context (e.g. a newline) to condition on")
    seqs = [ctx + tokenizer.encode(t) for t in texts]
    longest = max((len(s) for s in seqs), default=0)
    if longest - 1 > model.cfg.max_len:
        raise ArdmError(f"a sample of {longest - len(ctx)} tokens does not fit the reference model's "
                        f"context ({model.cfg.max_len})")
    model.eval()
    out: list[tuple[float, int]] = []
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start:start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        keep = torch.zeros(len(chunk), width - 1, dtype=torch.bool)
        for b, s in enumerate(chunk):
            ids[b, : len(s)] = torch.tensor(s)
            keep[b, len(ctx) - 1: len(s) - 1] = True  # score only the text's tokens
        logits, _ = model(ids[:, :-1].to(device))
        nll = token_nll(logits.float(), ids[:, 1:].to(device)).cpu() * keep
        out += [(float(nll[b].sum()), int(keep[b].sum())) for b in range(len(chunk))]
    return out


def perplexity(nlls: Sequence[tuple[float, int]]) -> float:
    """exp(total NLL / total tokens): the token-weighted generative perplexity."""
    tokens = sum(n for _, n in nlls)
    return math.exp(sum(v for v, _ in nlls) / tokens) if tokens else float("nan")


def bootstrap_ci(values: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], float] = np.mean, *,
                 level: float = 0.95, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of stat(values) (rows of a 2-D array are resampled together)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(resamples, len(v)))
    stats = np.array([stat(v[i]) for i in idx])
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def ppl_ci(nlls: Sequence[tuple[float, int]], **kwargs) -> tuple[float, float]:
    """Bootstrap interval of the token-weighted perplexity, resampling whole samples."""
    arr = np.asarray(nlls, dtype=np.float64).reshape(-1, 2)
    return bootstrap_ci(arr, lambda a: math.exp(a[:, 0].sum() / max(a[:, 1].sum(), 1.0)), **kwargs)


THIRDS = ("early", "middle", "late")


def focus_thirds(by_position: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Share of revisions in the early / middle / late third of the target span, i.e. relative
    position i/n in [0,1/3), [1/3,2/3), [2/3,1) for i = 0..n-1 (all 0 when there are none)."""
    v = np.asarray(by_position, dtype=np.float64)
    total = v.sum()
    bins = (3 * np.arange(len(v))) // max(len(v), 1)
    return {name: float(v[bins == j].sum() / total) if total else 0.0 for j, name in enumerate(THIRDS)}


def revision_stats(trace: dict) -> dict:
    """Where and when a run revised its tokens, from `Generation.trace` (SPEC §8.2).

    Counts effective overwrites (a visible token changed to another token or to MASK). Returns,
    averaged over the batch: overwrites per step (list over the trace's records), the fraction of
    target positions revised at least once, the share of revisions in the early / middle / late
    third of the target span ([0,1/3), [1/3,2/3), [2/3,1] of relative position i/n), the per-position
    revision rate, and a [steps, n] heatmap of revisions per sample.
    """
    P, L = trace["prompt_length"], trace["length"]
    n = L - P
    records = trace["records"]
    B = len(records[0]["written"]) if records else 0
    heat = np.zeros((len(records), n))
    ever = np.zeros((B, n), dtype=bool)
    per_step = []
    for k, rec in enumerate(records):
        total = 0
        for b in range(B):
            pos = [e[0] - P for e in rec["overwritten"][b]] + [e[0] - P for e in rec["remasked"][b]]
            total += len(pos)
            for i in pos:
                heat[k, i] += 1
                ever[b, i] = True
        per_step.append(total / max(B, 1))
    by_pos = heat.sum(0)
    total = by_pos.sum()
    return {"overwrites_per_step": per_step, "fraction_revised": float(ever.mean()) if B else 0.0,
            "focus_thirds": focus_thirds(by_pos), "rate_by_position": (by_pos / max(B, 1)).tolist(),
            "heatmap": (heat / max(B, 1)).tolist(), "total_overwrites": float(total / max(B, 1))}
