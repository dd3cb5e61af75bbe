"""Viewer benchmark (issue 19): the page of a large trace stays small and opens fast in Chromium.

Builds a synthetic trace of --tokens positions over --steps steps shaped like a revising sampler's
(every position written once, --overwrites overwrites and --remasks remasks per step, the gate's p
at every position and step), writes its viewer page, and reports the file size and the time the
page takes to become ready in headless Chromium from a file URL (navigation start to the end of
the viewer's setup, `performance.now()` in the page, real time; median of --repeats loads; the
whole Chromium run, browser start included, beside it). Targets: under 2 MB, under 2 s.

    python benchmarks/viewer_size.py [--tokens 512 --steps 256] [--out runs/bench/viewer_size.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

from ardm.core.checkpoint import atomic_write_text, git_commit
from ardm.evaluation.browser import dump_dom, find_chromium, page_state
from ardm.evaluation.viewer import write_page
from ardm.generation.trace import trace_document

MAX_BYTES, MAX_SECONDS = 2 * 2**20, 2.0


class Chars:
    """A character tokenizer over printable ASCII (the trace's token strings)."""

    vocab_size = 95

    def decode(self, ids):
        return "".join(chr(32 + i) for i in ids)


def synthetic_trace(tokens: int, steps: int, overwrites: int, remasks: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    L, P = tokens + 1, 1
    hidden = list(range(P, L))
    rng.shuffle(hidden)
    visible: list[int] = []
    records = []
    for k in range(1, steps + 1):
        n = -(-len(hidden) // (steps - k + 1))  # reveal the rest evenly over the remaining steps
        new, hidden = hidden[:n], hidden[n:]
        over = rng.sample(visible, min(overwrites, len(visible)))
        rest = [p for p in visible if p not in set(over)]
        gone = rng.sample(rest, min(remasks, len(rest))) if k < steps else []  # the last step leaves none
        visible = [p for p in visible if p not in set(gone)] + new
        hidden += gone
        records.append({"k": k, "written": [[[p, rng.randrange(95)] for p in new]],
                        "overwritten": [[[p, 0, rng.randrange(95)] for p in over]],
                        "remasked": [[[p, 0] for p in gone]], "selected": [len(over)],
                        "gate": [[round(rng.random() ** 3, 4) for _ in range(tokens)]]})
    chunk = {"first_sample": 0, "sampler": "synthetic", "options": {}, "length": L, "prompt_length": P,
             "steps": steps, "initial": [[[0, 0]]], "records": records}
    return trace_document([chunk], Chars(), checkpoint="synthetic")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--overwrites", type=int, default=8, help="overwrites per step")
    ap.add_argument("--remasks", type=int, default=4, help="remasks per step")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="runs/bench/viewer_size.json")
    args = ap.parse_args()
    doc = synthetic_trace(args.tokens, args.steps, args.overwrites, args.remasks)
    with tempfile.TemporaryDirectory() as tmp:
        trace_bytes = len(json.dumps(doc))
        page = write_page(doc, Path(tmp) / "page.html")
        size = page.stat().st_size
        ready_ms, wall = [], []
        if find_chromium():
            for _ in range(args.repeats):
                dom, seconds = dump_dom(page, "step=last", budget_ms=0)
                st = page_state(dom)
                assert st.body.get("data-ready") == "1" and not st.errors, st.errors
                assert len(st.cells) == args.tokens + 1 and st.board["data-masked"] == "0"
                ready_ms.append(float(st.body["data-load-ms"]))
                wall.append(seconds)
    load_s = statistics.median(ready_ms) / 1000 if ready_ms else None
    result = {"tokens": args.tokens, "steps": args.steps, "overwrites_per_step": args.overwrites,
              "remasks_per_step": args.remasks, "trace_json_bytes": trace_bytes, "page_bytes": size,
              "page_under_2mb": size < MAX_BYTES, "ready_s_median": load_s,
              "ready_s_all": [round(v / 1000, 3) for v in ready_ms],
              "chromium_run_s_all": [round(v, 2) for v in wall],
              "ready_under_2s": None if load_s is None else load_s < MAX_SECONDS,
              "chromium": find_chromium(), "git_commit": git_commit()}
    timing = (f"ready in {load_s:.3f} s (median of {len(ready_ms)}; whole Chromium runs "
              f"{', '.join(f'{v:.1f}' for v in wall)} s)" if load_s is not None
              else "no Chromium: load time not measured")
    print(f"{args.tokens} tokens x {args.steps} steps: page {size / 2**20:.2f} MB "
          f"(trace JSON {trace_bytes / 2**20:.2f} MB); {timing}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
