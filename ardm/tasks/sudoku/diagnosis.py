"""Where a greedy pass goes wrong, and whether the model's own confidence could have told (issue 15).

The gate revises a token when the model's uncertainty about it is high (SPEC §6.8). On Sudoku that
can only pay if a wrong digit is *visibly* uncertain when it is written. This probe runs `llada`
(one reveal per step at the bench's budget, temperature 0 by default) through the one generation
loop, records for every revealed cell its step and its confidence q(x_hat) at that moment, and for
every puzzle the pass gets wrong asks where the *first* wrong digit lies among the pass's commits:
how far in, how confident, and whether a rule "undo the least confident commit" or "undo the
earliest commit below tau" would have picked it. Then it re-reads each completed wrong grid (one more
pass, every written digit visible at level REREAD_LEVEL, the givens and the newline clean) and asks the
same of p(own digit) there: with the whole grid in view, does the model doubt the digit it should undo?
`ardm sudoku diagnose` prints the answer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ardm.generation.samplers.base import StepState, WriteSet
from ardm.generation.samplers.masked import LLaDASampler
from ardm.tasks.sudoku.solving import Codec, solve_batch

TAUS = (0.8, 0.9, 0.95, 0.99)  # thresholds on the confidence at commit
REREAD_TAUS = (0.1, 0.5, 0.9)  # thresholds on p(own digit) when the completed grid is re-read
REREAD_LEVEL = 0.05  # the noise level the written digits are fed at in the re-read (nearly clean)


class CommitRecorder(LLaDASampler):
    """`llada`, unchanged, that also keeps each revealed position's confidence q(x_hat) and step in
    its state (`aux["conf"]`, `aux["step"]`: NaN / -1 where nothing was revealed); `recorded` holds
    the last state, for reading after the run."""

    recorded: dict[str, torch.Tensor]

    def init(self, s: StepState) -> dict:
        return {**super().init(s), "conf": torch.full(s.x.shape, math.nan, dtype=torch.float64),
                "step": torch.full(s.x.shape, -1, dtype=torch.long)}

    def step(self, s: StepState) -> WriteSet:
        w = super().step(s)
        new = w.positions & s.masked
        conf, step = s.aux["conf"].clone(), s.aux["step"].clone()
        conf[new] = s.probs(new).gather(-1, w.values[new][:, None])[:, 0].cpu()
        step[new] = s.k
        self.recorded = {"conf": conf, "step": step}
        return WriteSet(w.positions, w.values, settle=w.settle, aux={**(w.aux or {}), **self.recorded})


@dataclass
class FirstError:
    """One wrong grid's first wrong digit, read against the pass's commits (the givens excluded)."""

    at: float  # how far in it was committed: its rank among the commits / their number, in (0, 1]
    confidence: float  # q(x_hat) when it was written
    least_confident: bool  # the least confident commit of the whole pass
    least_confident_so_far: bool  # the least confident commit up to and including it
    earliest_below: dict[float, bool]  # tau -> it is the earliest commit with confidence < tau
    # the re-read of the completed grid: p(own digit) per committed cell
    reread_least_is_wrong: bool  # the least likely digit is a wrong one
    reread_least_is_first: bool  # ... and it is the first wrong one
    reread_earliest_below: dict[float, bool]  # tau -> the earliest commit with p < tau is the first wrong
    reread_doubts_none: bool  # no digit has p < 0.8


def _earliest_below(seq: Sequence[float], tau: float) -> int | None:
    return next((j for j, q in enumerate(seq) if q < tau), None)


def first_error(conf: Sequence[float], order: Sequence[int], wrong: Sequence[bool],
                reread: Sequence[float]) -> FirstError | None:
    """`conf` (at commit), `order` (commit step), `wrong` and `reread` (p(own digit) in the completed
    grid) per committed cell; None when no digit is wrong."""
    cells = sorted(range(len(order)), key=lambda c: order[c])
    firsts = [i for i, c in enumerate(cells) if wrong[c]]
    if not firsts:
        return None
    i = firsts[0]
    seq, again = [conf[c] for c in cells], [reread[c] for c in cells]
    least = min(range(len(cells)), key=lambda j: again[j])
    return FirstError(
        at=(i + 1) / len(cells), confidence=seq[i], least_confident=seq[i] == min(seq),
        least_confident_so_far=seq[i] == min(seq[: i + 1]),
        earliest_below={tau: _earliest_below(seq, tau) == i for tau in TAUS},
        reread_least_is_wrong=bool(wrong[cells[least]]), reread_least_is_first=least == i,
        reread_earliest_below={tau: _earliest_below(again, tau) == i for tau in REREAD_TAUS},
        reread_doubts_none=min(again) >= 0.8)


@torch.no_grad()
def reread(model, codec: Codec, puzzles: Sequence[Sequence[int]],
           grids: Sequence[Sequence[int]]) -> torch.Tensor:
    """[B, 81] p(own digit) of each grid in one pass: the newline and the givens clean, every other
    cell at REREAD_LEVEL (a cell holding no digit is fed as MASK and gets p = 0)."""
    P, mask_id = len(codec.prompt), model.cfg.vocab_size
    ids = torch.tensor(codec.ids + [mask_id])  # digit d -> ids[d - 1]; 0 -> ids[-1] = MASK
    digits = torch.tensor([list(g) for g in grids])
    x = torch.cat([torch.tensor(codec.prompt).expand(len(grids), P), ids[digits - 1]], 1)
    given = torch.tensor([[d > 0 for d in p] for p in puzzles])
    t = torch.cat([torch.zeros(len(grids), P), torch.where(given, 0.0, REREAD_LEVEL)], 1)
    q = model(x, t)[0][:, P:].softmax(-1, dtype=torch.float64)
    own = q.gather(-1, ids[digits - 1].clamp(max=q.shape[-1] - 1)[..., None])[..., 0]
    return torch.where(digits > 0, own, 0.0)


def diagnose(model, tokenizer, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], steps: int = 81, *,
             temperature: float = 0.0, batch_size: int = 50, seed: int = 0) -> dict:
    """Solve `pairs` (puzzle, solution) with the recording `llada` and summarise the first wrong digit
    of every unsolved grid (rows stop once their grid is valid, as in the bench)."""
    codec, errors, solved = Codec(tokenizer), [], 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        sampler = CommitRecorder()
        attempts, _ = solve_batch(model, tokenizer, sampler, [p for p, _ in chunk], steps, seed=seed + start,
                                  temperature=temperature)
        aux, P = sampler.recorded, len(codec.prompt)
        again = reread(model, codec, [p for p, _ in chunk], [a.grid for a in attempts]).tolist()
        for b, ((puzzle, solution), a) in enumerate(zip(chunk, attempts, strict=True)):
            solved += a.solved
            if a.solved:
                continue
            conf, order = aux["conf"][b, P:].tolist(), aux["step"][b, P:].tolist()
            cells = [c for c in range(81) if not puzzle[c] and order[c] >= 0]
            e = first_error([conf[c] for c in cells], [order[c] for c in cells],
                            [a.grid[c] != solution[c] for c in cells], [again[b][c] for c in cells])
            if e is not None:
                errors.append(e)
    return summarise(errors, len(pairs), solved, steps, temperature)


def summarise(errors: list[FirstError], puzzles: int, solved: int, steps: int, temperature: float) -> dict:
    n = len(errors)
    return {"puzzles": puzzles, "solved": solved, "nfe": steps, "temperature": temperature, "wrong_grids": n,
            "first_error_at_median": statistics.median(e.at for e in errors) if n else None,
            "first_error_confidence_median": statistics.median(e.confidence for e in errors) if n else None,
            "first_error_is_least_confident": sum(e.least_confident for e in errors),
            "first_error_is_least_confident_so_far": sum(e.least_confident_so_far for e in errors),
            "first_error_is_earliest_below": {str(t): sum(e.earliest_below[t] for e in errors) for t in TAUS},
            "reread_least_likely_is_wrong": sum(e.reread_least_is_wrong for e in errors),
            "reread_least_likely_is_first_error": sum(e.reread_least_is_first for e in errors),
            "reread_earliest_below_is_first_error": {str(t): sum(e.reread_earliest_below[t] for e in errors)
                                                     for t in REREAD_TAUS},
            "reread_doubts_nothing_below_0.8": sum(e.reread_doubts_none for e in errors)}


def diagnosis_lines(d: dict) -> list[str]:
    n = d["wrong_grids"]
    lines = [f"llada at NFE {d['nfe']}, temperature {d['temperature']:g}: solved {d['solved']}/"
             f"{d['puzzles']}; {n} grids with a wrong digit"]
    if n:
        at, conf = d["first_error_at_median"], d["first_error_confidence_median"]
        least, so_far = d["first_error_is_least_confident"], d["first_error_is_least_confident_so_far"]
        lines += [f"- the first wrong digit is committed at median {100 * at:.0f}% of the commits, with "
                  f"median confidence {conf:.3f}",
                  f"- it is the least confident commit of the pass in {least}/{n}, the least confident so "
                  f"far in {so_far}/{n}",
                  "- it is the earliest commit below tau in " + ", ".join(
                      f"{k}/{n} (tau {t})" for t, k in d["first_error_is_earliest_below"].items()),
                  f"- re-read complete: the least likely digit is a wrong one in "
                  f"{d['reread_least_likely_is_wrong']}/{n}, the first wrong one in "
                  f"{d['reread_least_likely_is_first_error']}/{n}; no digit below 0.8 in "
                  f"{d['reread_doubts_nothing_below_0.8']}/{n}",
                  "- re-read complete: the earliest digit below tau is the first wrong one in " + ", ".join(
                      f"{k}/{n} (tau {t})" for t, k in d["reread_earliest_below_is_first_error"].items())]
    return lines
