"""`ardm seq2seq eval`: BLEU / chrF (/ ROUGE-L) vs NFE for every sampler on one split, MBR over k
candidates, beside the AR twin's greedy and beam search (SPEC §11.7, §6.9).

For each sampler spec and budget K, max(mbr) candidates are drawn per source once (candidate c of
source i: seed + c * N + i); MBR with k uses the first k of them, so the k-grid is nested and costs
one draw of max(mbr). NFE per source = the candidates' passes summed (x k, SPEC §6.10). The
`gate` spec (linear gate) is calibrated at each budget on the split's first sources (SPEC §6.8).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ardm.core.checkpoint import Loaded, atomic_write_text, git_commit, load
from ardm.data.parallel import Truncation, group_references, read_split, source_prompts
from ardm.errors import ArdmError
from ardm.evaluation.seq2seq_metrics import corpus_scores
from ardm.generation.registry import make_sampler
from ardm.generation.specs import SamplerSpec
from ardm.tasks.seq2seq.decoding import build_sampler, check_mbr, decode, layout
from ardm.tasks.seq2seq.report import write_plot, write_summary

DEFAULT_SAMPLERS = ("fixed", "mdlm", "llada", "remdm", "edit", "gate")


@dataclass
class EvalConfig:
    checkpoint: str
    ar_checkpoint: str = ""  # the AR twin: greedy (the loop's `ar` sampler, argmax) and beam rows
    split: str = "test"
    samplers: list[str] = field(default_factory=lambda: list(DEFAULT_SAMPLERS))
    nfe: list[int] = field(default_factory=lambda: [2, 5, 10, 20])
    mbr: list[int] = field(default_factory=lambda: [1, 4, 10])
    num: int = 0  # first num items of the split (0: all)
    temperature: float = 1.0
    seed: int = 0
    batch_size: int = 100
    beam: int = 4
    data: str = ""  # the corpus (default: the checkpoint's data.path)
    calibration_num: int = 32
    device: str = "cpu"
    progress: bool = True  # a bar per decode (candidates x batches)

    def __post_init__(self) -> None:
        for k in self.mbr:
            check_mbr(k)
        if not self.nfe or min(self.nfe) < 1:
            raise ArdmError(f"--nfe budgets must be >= 1, got {self.nfe}")
        if self.num < 0 or self.batch_size < 1 or self.beam < 1:
            raise ArdmError("--num must be >= 0, --batch-size and --beam >= 1")
        if not self.temperature >= 0:
            raise ArdmError(f"--temperature must be >= 0, got {self.temperature}")


def _items(loaded: Loaded, cfg: EvalConfig):
    data = dataclasses.replace(loaded.config.data, path=cfg.data or loaded.config.data.path)
    digest = hashlib.sha256()
    items = group_references(read_split(data, cfg.split, digest))
    return items[: cfg.num] if cfg.num else items, digest.hexdigest(), data.path


def _diffusion_runs(loaded: Loaded, spec_text: str, cfg: EvalConfig, sources, refs,
                    concepts: list[list[str]] | None) -> Iterator[list[dict]]:
    """The runs of one sampler spec, yielded budget by budget (one row per MBR k). `concepts` (the
    sources' words, for multi-reference concept sets) adds ROUGE-L and concept coverage."""
    spec = SamplerSpec.parse(spec_text)
    for K in cfg.nfe:
        runs = []
        sampler = build_sampler(loaded, spec, K, sources, cfg.seed, cfg.calibration_num)
        temperature = cfg.temperature if spec.temperature is None else spec.temperature
        d = decode(loaded, sources, sampler, K, k=max(cfg.mbr), seed=cfg.seed, temperature=temperature,
                   batch_size=cfg.batch_size, progress=cfg.progress, desc=f"{spec.label} NFE {K}")
        for k in sorted(cfg.mbr):
            texts, nfe = d.choose(k)
            runs.append({"label": spec.label, "sampler": spec.name,
                         "options": dataclasses.asdict(sampler.options), "temperature": temperature,
                         "nfe_budget": K, "mbr": k, "nfe_per_source": round(sum(nfe) / len(nfe), 2),
                         **corpus_scores(texts, refs, rouge=concepts is not None, concepts=concepts),
                         "wall_time_s": round(d.wall_time_s * k / max(cfg.mbr), 2), "hypotheses": texts})
        done = ", ".join(f"k={r['mbr']} BLEU {r['bleu']}" for r in runs)
        print(f"  {spec.label} NFE {K}: {done}", flush=True)
        yield runs


def _ar_runs(ar: Loaded, cfg: EvalConfig, sources, refs, concepts: list[list[str]] | None) -> list[dict]:
    _, tgt_len = layout(ar)
    runs = []
    greedy = make_sampler("ar")
    for label, sampler, beam in (("ar-greedy", greedy, 0), (f"ar-beam{cfg.beam}", None, cfg.beam)):
        d = decode(ar, sources, sampler, tgt_len, temperature=0.0, batch_size=cfg.batch_size, beam=beam,
                   progress=cfg.progress, desc=label)
        texts, nfe = d.choose(1)
        runs.append({"label": label, "sampler": "ar" if beam == 0 else "beam", "beam": beam or 1,
                     "temperature": 0.0, "nfe_budget": tgt_len, "mbr": 1,
                     "nfe_per_source": round(sum(nfe) / len(nfe), 2),
                     **corpus_scores(texts, refs, rouge=concepts is not None, concepts=concepts),
                     "wall_time_s": d.wall_time_s, "hypotheses": texts})
        print(f"  {label}: BLEU {runs[-1]['bleu']}")
    return runs


def _provenance(loaded: Loaded) -> dict:
    keep = ("recipe", "git_commit", "data_sha256", "step", "params", "elapsed_s")
    return {"path": str(loaded.path), **{k: loaded.meta[k] for k in keep if k in loaded.meta}}


def run_eval(cfg: EvalConfig, out: str | Path) -> dict:
    """Every sampler x NFE x MBR k on the split (and the AR twin); writes results.json, summary.md
    and bleu_vs_nfe.png into `out` (results.json after every sampler and budget, so a long run keeps
    its finished part)."""
    out = Path(out)
    loaded = load(cfg.checkpoint, cfg.device)
    items, data_sha, data_path = _items(loaded, cfg)
    sources, refs = [it.source for it in items], [it.references for it in items]
    rouge = any(len(r) > 1 for r in refs)  # multi-reference concept sets (CommonGen): ROUGE-L, coverage
    concepts = [s.split() for s in sources] if rouge else None
    ar = load(cfg.ar_checkpoint, cfg.device) if cfg.ar_checkpoint else None
    if ar is not None:  # each model reads the source with its own tokenizer; scores are on text
        layout(ar)
    src_len, _ = layout(loaded)
    truncated = _truncation(loaded, sources, src_len)
    results = {"config": dataclasses.asdict(cfg), "seed": cfg.seed, "git_commit": git_commit(),
               "data": {"path": data_path, "split": cfg.split, "sha256": data_sha, "items": len(items),
                        "references": sum(len(r) for r in refs), "truncated_sources": truncated},
               "checkpoint": _provenance(loaded), "ar_checkpoint": _provenance(ar) if ar else None,
               "metrics": ["bleu", "chrf"] + (["rouge_l", "coverage"] if rouge else []),
               "references": refs, "sources": sources, "runs": []}
    if not out.parent.is_dir():
        raise ArdmError(f"--out {out}: its folder {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    if ar is not None:
        results["runs"] += _ar_runs(ar, cfg, sources, refs, concepts)
    for spec in cfg.samplers:
        for runs in _diffusion_runs(loaded, spec, cfg, sources, refs, concepts):
            results["runs"] += runs
            _write(out, results, final=False)
    _write(out, results, final=True)
    return results


def _truncation(loaded: Loaded, sources: list[str], src_len: int) -> dict:
    """Sources longer than the model's source slot (reported in results.json, never silent)."""
    cut = Truncation()
    source_prompts(loaded.tokenizer, sources, src_len, cut)
    return cut.to_dict()


def _write(out: Path, results: dict, final: bool) -> None:
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, ensure_ascii=False))
    if final:
        atomic_write_text(out / "summary.md", write_summary(results))
        write_plot(results, out / "bleu_vs_nfe.png")
