"""`ardm compare` and `ardm ablate`: argument parsing only; the work is in ardm.evaluation.compare."""

from __future__ import annotations

from pathlib import Path

from ardm.cli.args import add_threads, apply_threads, float_list, int_list
from ardm.errors import ArdmError

DEFAULT_SAMPLERS = "l2r,fixed,remdm,acs,gate,gate-learned"


def _common(p) -> None:
    p.add_argument("--checkpoint", required=True,
                   help="the diffusion denoiser (checkpoint folder or run directory)")
    p.add_argument("--reference", required=True,
                   help="causal AR checkpoint that scores the samples (gen-PPL), e.g. from an -ar recipe")
    p.add_argument("--nfe", default="16,32,64",
                   help="comma-separated NFE budgets (sampler steps K), e.g. 8,16,32,64")
    p.add_argument("--num", type=int, default=32,
                   help="samples per sampler and budget (seeds SEED..SEED+NUM-1)")
    p.add_argument("--tokens", type=int, default=0,
                   help="tokens generated per sample (default: the largest budget, where l2r runs)")
    p.add_argument("--prompt", default="\n", help="text every sample starts from (default: a newline)")
    p.add_argument("--seed", type=int, default=0,
                   help="sample j of every run uses seed SEED + j (the same seeds for every sampler and "
                        "budget)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature of every run (0 = argmax; a spec's temperature=T overrides it)")
    p.add_argument("--top-k", type=int, default=0, help="sample among the K likeliest tokens only (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: keep the smallest set of likeliest tokens whose probability "
                        "reaches P (1 = off)")
    p.add_argument("--temperatures", metavar="T1,T2,...",
                   help="the quality-diversity frontier: run every spec at every budget at each temperature "
                        "(> 0), read each curve at the held-out data's entropy; e.g. 0.7,0.8,0.9,1.0,1.1")
    p.add_argument("--top-ps", metavar="P1,P2,...",
                   help="the frontier as a top-p sweep instead (each in (0, 1]); not with --temperatures")
    p.add_argument("--quality-target", type=float,
                   help="gen-PPL for the 'NFE needed at the data's entropy' read-out of a sweep "
                        "(default: the best such quality at the smallest budget)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="samples generated, and scored by the reference, per batch")
    p.add_argument("--data",
                   help="held-out text for the data's own entropy and gen-PPL (default: the checkpoint's)")
    p.add_argument("--entropy-tolerance", type=float, default=0.1,
                   help="runs whose entropy is this many nats below the data's are flagged and not ranked")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N, for both models")
    p.add_argument("--out", required=True,
                   help="folder for results.json, summary.md, the plots, report.html and viewer/ pages")
    add_threads(p, "; 1 beside a training run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="every sampler at every NFE budget on one checkpoint: results, summary, plots",
        description="Quality vs compute (SPEC §8.3): generative perplexity under a causal reference, "
                    "always with sample entropy and distinct-n, plus overwrites per step, positional "
                    "focus and time per revision, for each sampler at each budget. Specs: "
                    "NAME[:KEY=VALUE...], optionally LABEL=SPEC; `gate` is the linear gate, "
                    "`gate-learned` the trained gate beside the checkpoint.")
    _common(p)
    p.add_argument("--samplers", default=DEFAULT_SAMPLERS,
                   help=f"comma-separated sampler specs (default: {DEFAULT_SAMPLERS})")
    from ardm.evaluation.ablations import ABLATIONS

    p = sub.add_parser(
        "ablate", help="the gate's ablations (SPEC §8.4) through the same protocol as compare",
        description="Each ablation changes one thing of the default linear gate: " + "; ".join(
            f"{k}: {v}" for k, v in ABLATIONS.items()))
    _common(p)
    p.add_argument("--only", help="comma-separated ablation names (default: all)")
    p.add_argument("--extra", action="append", default=[], metavar="SPEC",
                   help="another spec to include, e.g. 'sparse 0.2=gate-learned:path=DIR' (repeatable)")


def run(args) -> int:
    from ardm.evaluation.ablations import ablation_specs
    from ardm.evaluation.compare import CompareConfig, run_compare
    from ardm.evaluation.frontier import ranking_lines
    from ardm.evaluation.report import best_by_budget

    if args.command == "ablate":
        names = [n.strip() for n in args.only.split(",")] if args.only else None
        samplers = ablation_specs(names, args.extra)
    else:
        samplers = [s for s in args.samplers.split(",") if s.strip()]
    if not samplers:
        raise ArdmError("no samplers given")
    cfg = CompareConfig(checkpoint=args.checkpoint, reference=args.reference, samplers=samplers,
                        nfe=int_list(args.nfe),
                        num=args.num, tokens=args.tokens, prompt=args.prompt, seed=args.seed,
                        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                        batch_size=args.batch_size, data=args.data, entropy_tolerance=args.entropy_tolerance,
                        device=args.device, kind=args.command,
                        temperatures=None if args.temperatures is None else float_list(args.temperatures,
                                                                                        "temperatures"),
                        top_ps=None if args.top_ps is None else float_list(args.top_ps, "top-ps"),
                        quality_target=args.quality_target)
    apply_threads(args)  # after the config's checks: a refused run leaves torch as it was
    out = Path(args.out)
    results = run_compare(cfg, out, progress=not args.no_progress)
    if "frontier" in results:
        print("\n".join(ranking_lines(results["frontier"])))
    else:
        for K, r in best_by_budget(results).items():
            print(f"NFE {K}: best {r['label']} (gen-PPL {r['gen_ppl']:.2f}, entropy {r['entropy']:.3f})" if r
                  else f"NFE {K}: no eligible run")
    print(f"report: {out / 'summary.md'} and {out / 'report.html'}; results: {out / 'results.json'}")
    return 0
