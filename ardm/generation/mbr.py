"""Minimum-Bayes-risk selection among k candidates (AR-Diffusion, SPEC §6.9).

`microsoft/ProphetNet:AR-diffusion/eval_utils/mbr/mbr_select.py`: choose the candidate y_i that
maximises (1/(k-1)) sum_{j != i} BLEU(hypothesis y_j, reference y_i), sentence BLEU-4 with
smoothing 1.0 (add-one on the n-gram precisions for n > 1). NFE multiplies by k.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(hypothesis: Sequence[str], reference: Sequence[str], max_n: int = 4,
                  smooth: float = 1.0) -> float:
    """BLEU of one tokenised hypothesis against one reference, in [0, 1]: geometric mean of clipped
    n-gram precisions (n = 1..max_n; add-`smooth` for n > 1) times the brevity penalty."""
    if not hypothesis or not reference:
        return 0.0
    logs = []
    for n in range(1, max_n + 1):
        hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
        matches = sum(min(c, ref[g]) for g, c in hyp.items())
        total = max(len(hypothesis) - n + 1, 0)
        add = smooth if n > 1 else 0.0
        if matches + add == 0 or total + add == 0:
            return 0.0
        logs.append(math.log((matches + add) / (total + add)))
    bp = 1.0 if len(hypothesis) > len(reference) else math.exp(1 - len(reference) / len(hypothesis))
    return bp * math.exp(sum(logs) / max_n)


def mbr_select(candidates: Sequence[str]) -> int:
    """Index of the candidate with the highest mean BLEU as a reference for the others (words split
    on whitespace; ties: the lowest index)."""
    if len(candidates) < 2:
        return 0
    toks = [c.split() for c in candidates]
    scores = [sum(sentence_bleu(toks[j], toks[i]) for j in range(len(toks)) if j != i) / (len(toks) - 1)
              for i in range(len(toks))]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def mbr_choose(candidates: list[dict], k: int) -> list[dict]:
    """Groups of k consecutive candidates -> the MBR choice of each, with the group's total cost."""
    out = []
    for i in range(0, len(candidates), k):
        group = candidates[i:i + k]
        best = dict(group[mbr_select([c["text"] for c in group])])
        best["mbr"] = {"k": k, "candidate_seeds": [c["seed"] for c in group], "chosen_seed": best["seed"]}
        best["nfe"] = sum(c["nfe"] for c in group)  # SPEC §6.10: MBR multiplies NFE by k
        out.append(best)
    return out
