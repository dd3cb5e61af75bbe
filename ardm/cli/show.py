"""`ardm sample --show`: replay a generation trace in the terminal, one frame per step.

Masked positions are dim dots, tokens written this step are green, tokens overwritten this step
are bold red on a dark background (remasked ones show as a red dot), so revisions of earlier
tokens are visible as they happen. On a non-terminal stream (a log, a test) frames are printed
one after another without colours or cursor movement.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

RESET, DIM, GREEN, REVISED = "\x1b[0m", "\x1b[2m", "\x1b[32m", "\x1b[1;31;48;5;236m"
MASK_GLYPH = "·"


def frames(trace: dict, prompt_ids: list[int], row: int = 0):
    """Yield (record, state, written, overwritten) for each step of one row of a trace.

    state: token id or None (MASK) per position; written / overwritten: sets of positions changed
    at that step (overwritten includes remasked positions).
    """
    state: list[int | None] = list(prompt_ids) + [None] * (trace["length"] - len(prompt_ids))
    for rec in trace["records"]:
        written, overwritten = set(), set()
        for pos, tok in rec["written"][row]:
            state[pos] = tok
            written.add(pos)
        for pos, _old, new in rec["overwritten"][row]:
            state[pos] = new
            overwritten.add(pos)
        for pos, _old in rec["remasked"][row]:
            state[pos] = None
            overwritten.add(pos)
        yield rec, list(state), written, overwritten


def render(state: list[int | None], written: set[int], overwritten: set[int], decode_one,
           color: bool = True) -> str:
    """One frame as text; newlines inside tokens are kept so char-level text keeps its shape."""
    out = []
    for pos, tok in enumerate(state):
        text = MASK_GLYPH if tok is None else decode_one(tok)
        if color:
            style = REVISED if pos in overwritten else GREEN if pos in written else DIM if tok is None else ""
            text = f"{style}{text}{RESET}" if style else text
        out.append(text)
    return "".join(out)


def animate(trace: dict, tokenizer, prompt_ids: list[int], *, row: int = 0, delay: float = 0.12,
            stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    tty = stream.isatty()
    total_w = total_o = 0
    for rec, state, written, overwritten in frames(trace, prompt_ids, row):
        total_w += len(written)
        total_o += len(overwritten)
        step = "final fill" if rec.get("final_fill") else f"step {rec['k']}/{trace['steps']}"
        header = (f"{trace['sampler']}  {step}  +{len(written)} written  ~{len(overwritten)} overwritten"
                  f"  (total: {total_w} written, {total_o} overwritten)")
        body = render(state, written, overwritten, lambda t: tokenizer.decode([t]), color=tty)
        if tty:
            stream.write("\x1b[H\x1b[J" + header + "\n\n" + body + "\n")
            stream.flush()
            time.sleep(delay)
        else:
            stream.write(f"--- {header}\n{body}\n")
    if tty:
        stream.write(f"\n{DIM}legend: {MASK_GLYPH} masked, {RESET}{GREEN}written{RESET}, "
                     f"{REVISED}overwritten{RESET}\n")
