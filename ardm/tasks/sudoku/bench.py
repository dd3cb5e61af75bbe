"""`ardm sudoku bench`: solve rate vs NFE for every sampler on easy / medium / hard puzzles.

Puzzle sets are generated here, deterministically by seed, with a unique solution each (ardm.tasks.sudoku
.puzzles.make_puzzles), and written beside the results so that anyone can re-run them. Solve-rate
intervals are Wilson 95% intervals. For each diffusion sampler (and the AR twin, if given) at each
budget: solve rate, mean rule violations per grid, mean NFE used (rows stop once their grid is
valid), and the selectivity of overwrites on that set (helpful / harmful, share in conflict).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ardm.core.checkpoint import Loaded, atomic_write_text, git_commit, load
from ardm.data.sudoku_puzzles import format_grid, make_puzzles, read_puzzles, search_nodes, write_puzzles
from ardm.errors import ArdmError
from ardm.generation.gate.calibration import calibrate
from ardm.generation.registry import SAMPLERS
from ardm.generation.specs import CALIBRATION_SEED_OFFSET, SamplerSpec
from ardm.tasks.sudoku.report import BENCH_FORMAT
from ardm.tasks.sudoku.solving import Codec, selectivity_counts, selectivity_rates, solve_batch

# Number of givens per difficulty. Issue 6 names easy = 36-45 and hard = 17-25; our generator's
# hill climb reaches 20 givens in about 15 s and 19 or fewer not in practice
# (ardm.data.sudoku_puzzles.make_puzzle), so hard sets are drawn from 20-25.
DIFFICULTY = {"easy": (36, 45), "medium": (27, 35), "hard": (20, 25)}
DEFAULT_SAMPLERS = "l2r,mdlm,llada,remdm,acs,edit,gate,gate:fill=schedule"
CALIBRATION_NUM = 32  # puzzles of the set that calibrate the linear gate (label-free: givens only)
# hard puzzles are also reported by number of givens: 20-21 are much harder than 24-25
GIVENS_STRATA = ((20, 21), (22, 23), (24, 25))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # clamped to contain p: at k = n rounding could leave the upper end a hair below 1 = p
    return (min(p, max(0.0, mid - half)), max(p, min(1.0, mid + half)))


@dataclasses.dataclass
class BenchConfig:
    checkpoint: str
    ar_checkpoint: str | None = None
    samplers: list[str] = dataclasses.field(default_factory=lambda: DEFAULT_SAMPLERS.split(","))
    nfe: list[int] = dataclasses.field(default_factory=lambda: [81, 162])
    sets: list[str] = dataclasses.field(default_factory=lambda: ["easy", "hard"])
    num: int = 100
    seed: int = 0
    temperature: float = 1.0
    batch_size: int = 50
    puzzles_dir: str | None = None  # reuse DIR/puzzles-SET.csv (written there on first use)

    def __post_init__(self) -> None:
        unknown = [s for s in self.sets if s not in DIFFICULTY]
        if unknown:
            raise ArdmError(f"unknown puzzle set(s) {unknown}; known: {', '.join(DIFFICULTY)}")
        if self.num < 1 or self.batch_size < 1 or not self.nfe or min(self.nfe) < 1:
            raise ArdmError("num, batch size and every NFE budget must be >= 1")


def attempt_all(loaded: Loaded, spec: SamplerSpec, pairs, K: int, cfg: BenchConfig, trace: bool = False,
                traces: list[dict] | None = None):
    """Solve every puzzle once; returns per-puzzle records and the selectivity of the overwrites.
    With trace, each batch's loop trace (with its `first_sample`) is appended to `traces` if given."""
    codec, stats, spec = Codec(loaded.tokenizer), None, spec.resolve(loaded.path)
    if spec.calibrated:  # the linear gate's normalisation statistics at this budget (SPEC §6.8)
        cond = codec.conditioning([p for p, _ in pairs[:CALIBRATION_NUM]])
        stats = calibrate(loaded.model, length=cond["given"].shape[1], steps=K, num=len(cond["given"]),
                          batch=cfg.batch_size, seed=cfg.seed + CALIBRATION_SEED_OFFSET, **cond,
                          **spec.signal_options)
    sampler = spec.build(loaded.path, stats=stats)
    records, counts = [], Counter()
    for first in range(0, len(pairs), cfg.batch_size):
        chunk = pairs[first:first + cfg.batch_size]
        puzzles = [p for p, _ in chunk]
        attempts, tr = solve_batch(loaded.model, loaded.tokenizer, sampler, puzzles, K, seed=cfg.seed + first,
                                   temperature=cfg.temperature, trace=trace, loop=spec.loop)
        records += [{"solved": a.solved, "violations": a.violations, "nfe": a.nfe,
                     "grid": format_grid(a.grid)} for a in attempts]
        if trace:
            counts.update(selectivity_counts(tr, codec, puzzles, [q for _, q in chunk]))  # keeps zeros
            if traces is not None:
                traces.append({"first_sample": first, **tr})
    return records, selectivity_rates(counts) if trace else None


def givens_strata(records: list[dict], pairs) -> list[dict[str, Any]]:
    """The solve summary per band of givens (GIVENS_STRATA) among these puzzles; empty bands left out."""
    givens = [sum(1 for v in p if v) for p, _ in pairs]
    out = []
    for lo, hi in GIVENS_STRATA:
        band = [r for r, g in zip(records, givens, strict=True) if lo <= g <= hi]
        if band:
            out.append({"givens": [lo, hi], **solve_summary(band)})
    return out


def logic_strata(records: list[dict], pairs) -> list[dict[str, Any]]:
    """The solve summary split by what a puzzle needs: "singles" (naked and hidden singles settle every
    cell, no guess: `search_nodes` = 0) or "search" (at least one guess). A sampler that propagates
    constraints perfectly solves every "singles" puzzle; only revision or luck solves "search" ones."""
    needs = ["search" if search_nodes(p) else "singles" for p, _ in pairs]
    return [{"logic": kind, **solve_summary([r for r, n in zip(records, needs, strict=True) if n == kind])}
            for kind in ("singles", "search") if kind in needs]


def puzzle_set(name: str, cfg: BenchConfig, out: Path):
    """The `name` set: read from cfg.puzzles_dir when it holds one of at least cfg.num puzzles, else
    generated deterministically (and saved there for the next bench); always copied beside results."""
    shared = Path(cfg.puzzles_dir) / f"puzzles-{name}.csv" if cfg.puzzles_dir else None
    pairs = None
    if shared is not None and shared.exists():
        entries, errors = read_puzzles(shared)
        if errors or any(e.solution is None for e in entries):
            raise ArdmError(f"{shared}: not a puzzle set written by the bench (bad lines or no solutions)")
        if len(entries) >= cfg.num:
            pairs = [(e.puzzle, e.solution) for e in entries[:cfg.num]]
    if pairs is None:
        set_seed = cfg.seed + 7919 * (1 + list(DIFFICULTY).index(name))  # each set its own puzzles
        pairs = make_puzzles(cfg.num, DIFFICULTY[name], seed=set_seed)
        if shared is not None:
            shared.parent.mkdir(parents=True, exist_ok=True)
            write_puzzles(shared, pairs)
    write_puzzles(out / f"puzzles-{name}.csv", pairs)
    return pairs


def solve_summary(records: list[dict]) -> dict[str, Any]:
    k, n = sum(r["solved"] for r in records), len(records)
    return {"solve_rate": k / n, "solve_rate_ci": list(wilson(k, n)), "solved": k, "puzzles": n,
            "violations_per_grid": sum(r["violations"] for r in records) / n,
            "nfe_mean": sum(r["nfe"] for r in records) / n}


def run_bench(cfg: BenchConfig, out: Path, progress: bool = True) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    den = load(cfg.checkpoint)
    ar = load(cfg.ar_checkpoint) if cfg.ar_checkpoint else None
    if ar is not None and not ar.model.cfg.causal:
        raise ArdmError(f"--ar {cfg.ar_checkpoint} is not a causal model")
    specs = [SamplerSpec.parse(s) for s in cfg.samplers] + ([SamplerSpec.parse("ar")] if ar else [])
    sets = {name: puzzle_set(name, cfg, out) for name in cfg.sets}
    results: dict[str, Any] = {"format": BENCH_FORMAT, "config": dataclasses.asdict(cfg),
                               "git_commit": git_commit(), "difficulty_givens": DIFFICULTY,
                               "checkpoint": {"path": str(den.path), "recipe": den.config.recipe},
                               "runs": [], "skipped": []}
    start = time.perf_counter()
    jobs = [(s, K, name) for name in cfg.sets for K in cfg.nfe for s in specs]
    for spec, K, name in tqdm(jobs, desc="sudoku bench", disable=not progress):
        loaded = ar if spec.name == "ar" else den
        try:
            SAMPLERS[spec.name]().num_steps(81, K)
        except ArdmError as e:
            results["skipped"].append({"label": spec.label, "nfe_budget": K, "set": name, "reason": str(e)})
            continue
        t0 = time.perf_counter()
        records, sel = attempt_all(loaded, spec, sets[name], K, cfg, trace=spec.name != "ar")
        results["runs"].append({"label": spec.label, "sampler": spec.name, "set": name, "nfe_budget": K,
                                **solve_summary(records), "by_givens": givens_strata(records, sets[name]),
                                "by_logic": logic_strata(records, sets[name]),
                                "selectivity": sel,
                                "wall_time_s": round(time.perf_counter() - t0, 2), "attempts": records})
        # written after every run, so a long bench that is stopped keeps what it measured
        atomic_write_text(out / "results.partial.json", json.dumps(results, indent=1))
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    from ardm.tasks.sudoku.report import write_bench_report

    atomic_write_text(out / "results.json", json.dumps(results, indent=1))  # before the plot can fail
    (out / "results.partial.json").unlink(missing_ok=True)
    write_bench_report(results, out)
    return results
