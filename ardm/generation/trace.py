"""Trace files: a generation's step-by-step record on disk, readable without the model (issue 19).

`generate(..., trace=True)` returns per batch the starting tokens (`initial`: prompt and givens)
and per step which positions were written, overwritten and remasked, as token ids (SPEC §8.2 reads
revisions from it). A trace *file* adds what a reader needs to show it without the tokenizer: a
format name and version, the task (`text`, or `sudoku` for a 9x9 board after the prompt), the
string of every token id the trace uses, and the batches ("chunks", each with the index of its
first sample). `ardm sample --trace` and `ardm sudoku solve --trace` write one; `ardm view`
(ardm.evaluation.viewer) turns one sample of it into a web page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ardm.errors import ArdmError

__all__ = ["TRACE_FORMAT", "TRACE_VERSION", "trace_document", "check_trace", "read_trace", "one_sample",
           "row_trace"]

TRACE_FORMAT = "ardm-trace"
TRACE_VERSION = 1
TASKS = ("text", "sudoku")
TOP_FIELDS = ("task", "vocab", "chunks")
CHUNK_FIELDS = ("sampler", "length", "prompt_length", "steps", "initial", "records")
RECORD_FIELDS = ("k", "written", "overwritten", "remasked")


def _ids(chunk: dict) -> Iterable[int]:
    """Every token id a loop trace mentions (starting tokens, old and new values of each change)."""
    for row in chunk["initial"]:
        yield from (tok for _, tok in row)
    for rec in chunk["records"]:
        for key in ("written", "overwritten", "remasked"):
            for row in rec[key]:
                for entry in row:
                    yield from entry[1:]


def trace_document(chunks: list[dict], tokenizer, *, checkpoint: str, task: str = "text",
                   **meta) -> dict:
    """A trace file's content: loop traces (`Generation.trace`, each with `first_sample`) + the
    strings of the token ids they use + format, version, task and any JSON-ready `meta`."""
    if task not in TASKS:
        raise ArdmError(f"unknown trace task {task!r}; known: {', '.join(TASKS)}")
    ids = sorted({i for c in chunks for i in _ids(c)})
    vocab = {str(i): tokenizer.decode([i]) for i in ids}
    return {"format": TRACE_FORMAT, "version": TRACE_VERSION, "task": task, "checkpoint": checkpoint,
            **meta, "vocab": vocab, "chunks": chunks}


def _missing(d, fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if not isinstance(d, dict) or f not in d]


def check_trace(doc, source: str = "trace") -> dict:
    """`doc` if it is a trace file of this version; else one ArdmError naming what is wrong or missing."""
    if not isinstance(doc, dict) or doc.get("format") != TRACE_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ArdmError(f"{source} is not a trace file: field 'format' is {found!r}, expected "
                        f"{TRACE_FORMAT!r} (write one with `ardm sample --trace FILE`)")
    if doc.get("version") != TRACE_VERSION:
        raise ArdmError(f"{source}: trace format version {doc.get('version')!r} is not supported "
                        f"(this ardm reads version {TRACE_VERSION}); write the trace again")
    missing = _missing(doc, TOP_FIELDS)
    if missing:
        raise ArdmError(f"{source}: the trace lacks field(s) {', '.join(missing)}")
    if doc["task"] not in TASKS:
        raise ArdmError(f"{source}: unknown task {doc['task']!r}; known: {', '.join(TASKS)}")
    if not isinstance(doc["chunks"], list) or not doc["chunks"]:
        raise ArdmError(f"{source}: the trace holds no chunk (no sample)")
    for c, chunk in enumerate(doc["chunks"]):
        missing = _missing(chunk, CHUNK_FIELDS)
        if missing:
            raise ArdmError(f"{source}: chunk {c} lacks field(s) {', '.join(missing)}")
        for r, rec in enumerate(chunk["records"]):
            missing = _missing(rec, RECORD_FIELDS)
            if missing:
                raise ArdmError(f"{source}: chunk {c}, record {r} lacks field(s) {', '.join(missing)}")
    unknown = sorted({i for c in doc["chunks"] for i in _ids(c)} - {int(k) for k in doc["vocab"]})
    if unknown:
        raise ArdmError(f"{source}: token id(s) {unknown[:5]} have no entry in the trace's vocab")
    return doc


def read_trace(path: str | Path) -> dict:
    """Read and check a trace file (ArdmError if it is missing, not JSON or not a trace)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArdmError(f"trace {path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArdmError(f"{path} is not a JSON trace file ({e})") from None
    return check_trace(doc, str(path))


def one_sample(doc: dict, sample: int = 0) -> tuple[dict, int]:
    """(chunk, row) holding sample number `sample` (counted over the whole file)."""
    for c in doc["chunks"]:
        first, rows = c.get("first_sample", 0), len(c["initial"])
        if first <= sample < first + rows:
            return c, sample - first
    total = sum(len(c["initial"]) for c in doc["chunks"])
    raise ArdmError(f"sample {sample} is not in the trace (it holds samples 0..{total - 1})")


def row_trace(trace: dict, row: int) -> dict:
    """A loop trace cut down to one row of its batch (a one-sample trace, e.g. for a report page)."""
    records = []
    for rec in trace["records"]:
        r = {k: ([v[row]] if k in ("written", "overwritten", "remasked", "selected", "gate") else v)
             for k, v in rec.items()}
        records.append(r)
    return {**trace, "initial": [trace["initial"][row]], "records": records}
