"""`ardm seq2seq eval`: argument parsing; the work is ardm.tasks.seq2seq.bench.run_eval."""

from __future__ import annotations

from ardm.cli.args import int_list


def add_parser(sub) -> None:
    p = sub.add_parser("seq2seq", help="seq2seq (Multi30k, CommonGen): evaluate samplers by BLEU vs NFE",
                       description="Conditional generation with a prefix denoiser (SPEC §11.7).")
    ss = p.add_subparsers(dest="seq2seq_command", metavar="SUBCOMMAND", required=True)
    e = ss.add_parser("eval", help="BLEU / chrF (/ ROUGE-L) vs NFE and MBR k for every sampler, "
                                     "beside the AR twin",
                      description="Decodes a split with every sampler spec at every NFE budget, draws "
                                  "max(--mbr) candidates per source and scores MBR over the first k of them "
                                  "with sacrebleu (and rouge-score where items have several references). "
                                  "Writes results.json, summary.md and bleu_vs_nfe.png into --out.")
    e.add_argument("--checkpoint", required=True, help="the seq2seq denoiser")
    e.add_argument("--ar", metavar="DIR", help="its AR twin (greedy and beam rows)")
    e.add_argument("--split", default="test", help="train, val (val/valid/dev) or test (test or test_*)")
    e.add_argument("--samplers", default="fixed,mdlm,llada,remdm,edit,gate",
                   help="comma-separated sampler specs")
    e.add_argument("--nfe", default="2,5,10,20", help="comma-separated NFE budgets per candidate")
    e.add_argument("--mbr", default="1,4,10", help="comma-separated MBR candidate counts k")
    e.add_argument("--num", type=int, default=0, help="the split's first N items (0: all)")
    e.add_argument("--temperature", type=float, default=1.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--beam", type=int, default=4, help="beam width of the AR twin's beam row")
    e.add_argument("--batch-size", type=int, default=100)
    e.add_argument("--data", help="the parallel corpus (default: the checkpoint's data.path)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--out", required=True)


def run(args) -> int:
    from ardm.tasks.seq2seq.bench import EvalConfig, run_eval
    from ardm.tasks.seq2seq.report import goal_lines

    cfg = EvalConfig(checkpoint=args.checkpoint, ar_checkpoint=args.ar or "", split=args.split,
                     samplers=[s for s in args.samplers.split(",") if s.strip()], nfe=int_list(args.nfe),
                     mbr=int_list(args.mbr, "MBR candidate counts"), num=args.num,
                     temperature=args.temperature,
                     seed=args.seed, batch_size=args.batch_size, beam=args.beam, data=args.data or "",
                     device=args.device)
    results = run_eval(cfg, args.out)
    print("\n".join(goal_lines(results)))
    print(f"wrote {args.out}/results.json, summary.md, bleu_vs_nfe.png")
    return 0
