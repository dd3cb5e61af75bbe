"""`ardm view`: one sample of a trace file as a self-contained web page (issue 19).

The page is one HTML file that works offline from a file URL: its script and style are inline
(viewer.js, viewer.css beside this module), nothing is fetched. It shows the sequence as a grid of
tokens (a 9x9 board for Sudoku traces: givens marked, conflicting cells outlined), a step slider
with play / pause, each token colored by its state at that step (masked, newly written, kept,
overwritten, remasked; prompt and givens apart), the gate's overwrite probability as a heat row
under the tokens when the trace has it, per-step counts of writes / overwrites / remasks as a
chart, and a token's history on hover.

Large traces stay small: the page stores the starting tokens and per step only what changed
(position, kind, token), never whole states, and the gate's probabilities as one byte each
(base64); the script rebuilds a state from snapshots it takes while loading. Token strings reach
the page only as JSON data (with `<`, `>`, `&` escaped) and are put into the DOM as text, never
as markup, so a token like `<script>` shows as itself.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from pathlib import Path

from ardm.core.checkpoint import atomic_write_text
from ardm.errors import ArdmError
from ardm.generation.trace import (
    TRACE_VERSION,
    check_trace,
    one_sample,
    read_trace,
    row_trace,
    trace_document,
)

__all__ = ["page_data", "render_page", "write_page", "view", "sample_page"]

KINDS = ("written", "overwritten", "remasked")  # event kinds 0, 1, 2 in the page's deltas
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _asset(name: str) -> str:
    return resources.files("ardm.evaluation").joinpath(name).read_text(encoding="utf-8")


def _gate_bytes(row: list[float]) -> str:
    """The gate's probabilities of one step, one byte each (p * 255, rounded), base64."""
    return base64.b64encode(bytes(round(min(max(float(p), 0.0), 1.0) * 255) for p in row)).decode("ascii")


def page_data(doc: dict, sample: int = 0) -> dict:
    """What the page's script reads: one sample's starting tokens and per-step deltas.

    tokens: the strings of the token ids this sample uses; initial: [position, token index] of the
    prompt and givens; steps: per trace record {k, ev: flat [position, kind, token index] triples
    (kind 0 written, 1 overwritten, 2 remasked with token -1), gate: base64 bytes or absent, fill: 1
    for the final argmax fill}. Steps after the sample's last change are left out (a row that
    stopped early, e.g. a solved Sudoku, would only repeat its final state).
    """
    chunk, row = one_sample(doc, sample)
    index: dict[int, int] = {}

    def tok(i: int) -> int:
        return index.setdefault(int(i), len(index))

    initial = [[pos, tok(t)] for pos, t in chunk["initial"][row]]
    steps = []
    for rec in chunk["records"]:
        ev: list[int] = []
        for pos, t in rec["written"][row]:
            ev += [pos, 0, tok(t)]
        for pos, _old, t in rec["overwritten"][row]:
            ev += [pos, 1, tok(t)]
        for pos, _old in rec["remasked"][row]:
            ev += [pos, 2, -1]
        step: dict = {"k": rec["k"], "ev": ev}
        if rec.get("final_fill"):
            step["fill"] = 1
        if rec.get("gate"):
            step["gate"] = _gate_bytes(rec["gate"][row])
        steps.append(step)
    while len(steps) > 1 and not steps[-1]["ev"]:
        steps.pop()
    task = doc["task"]
    if task == "sudoku" and chunk["length"] - chunk["prompt_length"] != 81:
        raise ArdmError(f"a sudoku trace needs 81 positions after the prompt, "
                        f"this one has {chunk['length'] - chunk['prompt_length']}")
    return {"task": task, "sample": sample, "sampler": chunk["sampler"], "options": chunk.get("options", {}),
            "checkpoint": doc.get("checkpoint", ""), "length": chunk["length"],
            "prompt_length": chunk["prompt_length"], "budget": chunk["steps"],
            "tokens": [doc["vocab"][str(i)] for i in index], "initial": initial, "steps": steps}


def _json_for_script(data: dict) -> str:
    """JSON that cannot end its <script> element early: <, > and & as \\u escapes."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(doc: dict, sample: int = 0, title: str | None = None) -> str:
    """The HTML page of sample `sample` of a trace file's content (checked first)."""
    doc = check_trace(doc)
    data = page_data(doc, sample)
    opts = ", ".join(f"{k}={v}" for k, v in data["options"].items())
    model = Path(str(data["checkpoint"])).name or "a model"
    title = title or f"{data['sampler']} on {model}, sample {sample}"
    subtitle = (f"{data['task']} trace, {data['length'] - data['prompt_length']} positions after a prompt "
                f"of {data['prompt_length']}, step budget {data['budget']}"
                + (f"; sampler options: {opts}" if opts else ""))
    values = {"title": html.escape(title), "subtitle": html.escape(subtitle),
              "board": "sudoku" if data["task"] == "sudoku" else "text", "max": str(len(data["steps"])),
              "version": str(TRACE_VERSION), "css": _asset("viewer.css"), "data": _json_for_script(data),
              "script": _asset("viewer.js")}
    # one pass: a value's own text (a token string, the script) is never scanned for placeholders
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], _asset("viewer.html"))


def write_page(doc: dict, out: str | Path, sample: int = 0, title: str | None = None) -> Path:
    """Write the page of one sample atomically; returns its path."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ArdmError(f"{out}: folder {out.parent} does not exist")
    atomic_write_text(out, render_page(doc, sample, title))
    return out


def view(trace: str | Path, out: str | Path | None = None, sample: int = 0) -> Path:
    """`ardm view TRACE.json`: the page of one sample of a trace file, written to `out`
    (default: the trace's path with .html); returns the page's path."""
    trace = Path(trace)
    return write_page(read_trace(trace), out or trace.with_suffix(".html"), sample)


def sample_page(trace: dict, tokenizer, out: str | Path, *, checkpoint: str, row: int = 0,
                task: str = "text", title: str | None = None) -> Path:
    """The page of one row of a loop trace (`Generation.trace`), e.g. a compare run's first sample."""
    doc = trace_document([{"first_sample": 0, **row_trace(trace, row)}], tokenizer, checkpoint=checkpoint,
                         task=task)
    return write_page(doc, out, 0, title)
