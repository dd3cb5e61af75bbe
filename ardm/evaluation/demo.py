"""`ardm demo`: the sampler comparison (ardm.evaluation.compare) on the bundled Tiny Shakespeare checkpoints.

Offline, a few minutes on 2 CPU cores: `l2r`, `fixed`, `remdm`, `acs`, the default gate (the
bundled denoiser's trained gate, ardm.generation.specs) and the linear gate (plus true AR decoding
with the reference, for context) at several NFE budgets on the
bundled hybrid-noise denoiser, scored by the bundled AR reference. Writes results.json, summary.md
and the plots into --out and prints the table. The bundled models were trained by our recipes
(`checkpoints/README.md` has the commands and their metrics).
"""

from __future__ import annotations

from pathlib import Path

from ardm.errors import ArdmError
from ardm.evaluation.compare import CompareConfig, run_compare
from ardm.evaluation.report import best_by_budget, gate_statements, headline, summary_table

BUNDLED = Path(__file__).resolve().parents[2] / "checkpoints"  # the repository's checkpoints/
DENOISER, REFERENCE = "shakespeare-char", "shakespeare-char-ar"
DEMO_SAMPLERS = ["l2r", "fixed", "remdm", "acs", "gate", "gate-linear", "ar"]
DEMO_NFE = [16, 32, 64]
DEMO_TOKENS = 64
DEMO_NUM = 32
TINY_SHAKESPEARE = BUNDLED.parent.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def run_demo(out: Path, checkpoints: Path = BUNDLED, num: int = DEMO_NUM, nfe: list[int] | None = None,
             tokens: int = DEMO_TOKENS, progress: bool = True) -> int:
    den, ref = Path(checkpoints) / DENOISER, Path(checkpoints) / REFERENCE
    for p in (den, ref):
        if not (p / "config.json").is_file():
            raise ArdmError(f"bundled checkpoint {p} is missing (run the demo from a clone of the "
                            "repository, or pass --checkpoints DIR)")
    # held-out text for the data's own entropy / gen-PPL, when the shared corpora are beside the clone
    data = str(TINY_SHAKESPEARE) if TINY_SHAKESPEARE.is_file() else None
    cfg = CompareConfig(checkpoint=str(den), reference=str(ref), samplers=DEMO_SAMPLERS, nfe=nfe or DEMO_NFE,
                        num=num, tokens=tokens, data=data, kind="demo")
    print(f"[demo] {len(DEMO_SAMPLERS)} samplers x budgets {cfg.nfe}, {num} samples of {tokens} "
          f"characters each, on {den} (scored by {ref}) ...", flush=True)
    results = run_compare(cfg, Path(out), progress=progress)
    print("\n" + "\n".join(summary_table(results)) + "\n")
    for K, r in best_by_budget(results).items():
        print(f"NFE {K}: best {r['label']} (gen-PPL {r['gen_ppl']:.2f}, entropy {r['entropy']:.3f})" if r
              else f"NFE {K}: no run within the entropy tolerance")
    print("\n".join(gate_statements(results) + headline(results)))
    print(f"\n[demo] report: {Path(out) / 'summary.md'} and report.html (results.json, plots and "
          f"viewer pages beside it; {results['wall_time_s']} s)")
    return 0
