"""`ardm seq2seq eval`: argument parsing; the work is ardm.tasks.seq2seq.bench.run_eval."""

from __future__ import annotations

from ardm.cli.args import add_threads, apply_threads, int_list


def add_parser(sub) -> None:
    p = sub.add_parser("seq2seq", help="seq2seq (Multi30k, CommonGen): evaluate samplers by BLEU vs NFE",
                       description="Conditional generation with a prefix denoiser (SPEC §11.7).")
    ss = p.add_subparsers(dest="seq2seq_command", metavar="SUBCOMMAND", required=True)
    e = ss.add_parser("eval", help="BLEU / chrF (/ ROUGE-L) vs NFE and MBR k for every sampler, "
                                     "beside the AR twin",
                      description="Decodes a split with every sampler spec at every NFE budget, draws "
                                  "max(--mbr) candidates per source and scores MBR over the first k of them "
                                  "with sacrebleu (and ROUGE-L and concept coverage where items have "
                                  "several references: CommonGen). "
                                  "Writes results.json, summary.md and bleu_vs_nfe.png into --out.")
    e.add_argument("--checkpoint", required=True, help="the seq2seq denoiser")
    e.add_argument("--ar", metavar="DIR", help="its AR twin (greedy and beam rows)")
    e.add_argument("--split", default="test", help="train, val (val/valid/dev) or test (test or test_*)")
    e.add_argument("--samplers", default="fixed,mdlm,llada,remdm,edit,gate",
                   help="comma-separated sampler specs")
    e.add_argument("--nfe", default="2,5,10,20", help="comma-separated NFE budgets per candidate")
    e.add_argument("--mbr", default="1,4,10", help="comma-separated MBR candidate counts k")
    e.add_argument("--num", type=int, default=0, help="the split's first N items (0: all)")
    e.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature of the samplers (0 = argmax; a spec's temperature=T overrides "
                        "it; the AR twin's rows are always greedy or beam)")
    e.add_argument("--seed", type=int, default=0,
                   help="candidate c of source i (of N) uses seed SEED + c N + i, at every budget")
    e.add_argument("--beam", type=int, default=4, help="beam width of the AR twin's beam row")
    e.add_argument("--batch-size", type=int, default=100,
                   help="sources decoded together in one batch (results do not depend on it)")
    e.add_argument("--data", help="the parallel corpus (default: the checkpoint's data.path)")
    e.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N, for both models")
    e.add_argument("--out", required=True, help="folder for results.json, summary.md and bleu_vs_nfe.png")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    d = ss.add_parser("distill", help="sequence-level knowledge distillation: the AR twin's beam outputs "
                                      "as training targets",
                      description="Decodes every distinct training source of the teacher's parallel corpus "
                                  "with its beam search (Kim & Rush 2016) and writes a folder of aligned "
                                  "files with the same names: train targets distilled, the other splits "
                                  "copied, plus distill.json. Train a denoiser on it with --set "
                                  "data.path=OUT (and --init-from-ar TEACHER to keep its tokenizer).")
    d.add_argument("--teacher", required=True, help="the AR twin (a causal seq2seq checkpoint)")
    d.add_argument("--out", required=True, help="the folder to write (replaced atomically)")
    d.add_argument("--beam", type=int, default=4, help="beam width")
    d.add_argument("--batch-size", type=int, default=256, help="sources per beam-search batch")
    d.add_argument("--data", help="the parallel corpus folder (default: the teacher's data.path)")
    d.add_argument("--num", type=int, default=0, help="the first N distinct training sources only (0: all)")
    add_threads(d)
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = ss.add_parser("augment", help="concept-to-text (CommonGen): more training pairs, concept sets drawn "
                                      "from the training targets",
                      description="Writes a copy of a folder of aligned files whose train split also holds, "
                                  "for every distinct training target, a pair (3-5 of its content words as "
                                  "lemmas, random order -> the sentence), so every word of the training "
                                  "targets is seen as a concept; the other splits are copied. Train on it "
                                  "with --set data.path=OUT.")
    a.add_argument("--data", required=True, help="folder of aligned files (../shared/data/commongen)")
    a.add_argument("--out", required=True, help="the folder to write (replaced atomically)")
    a.add_argument("--pair", default="src_alpha.txt,tgt.txt", help="SRC,TGT file suffixes")
    a.add_argument("--seed", type=int, default=0, help="seed of the drawn concept sets")
    t = ss.add_parser("table", help="merge several eval results.json files into one sampler x NFE grid",
                      description="Prints the grid (a row per sampler and temperature, a column per NFE "
                                  "budget, MBR k = 1 / 4 / 10 in each cell) of one denoiser on one split, "
                                  "merged from the results.json files of several `ardm seq2seq eval` runs.")
    t.add_argument("results", nargs="+", help="results.json files of one denoiser on one split")
    t.add_argument("--ar-results", nargs="*", default=[], metavar="FILE",
                   help="files whose AR twin rows (greedy, beam) to add; their diffusion rows are ignored")
    t.add_argument("--metric", default="bleu", choices=["bleu", "chrf", "rouge_l", "coverage"],
                   help="the cell metric")
    t.add_argument("--plot", metavar="PNG", help="also write the merged BLEU-vs-NFE plot here")


def run(args) -> int:
    if args.seq2seq_command == "distill":
        return _distill(args)
    if args.seq2seq_command == "table":
        return _table(args)
    if args.seq2seq_command == "augment":
        return _augment(args)
    from ardm.tasks.seq2seq.bench import EvalConfig, run_eval
    from ardm.tasks.seq2seq.report import goal_lines

    cfg = EvalConfig(checkpoint=args.checkpoint, ar_checkpoint=args.ar or "", split=args.split,
                     samplers=[s for s in args.samplers.split(",") if s.strip()], nfe=int_list(args.nfe),
                     mbr=int_list(args.mbr, "MBR candidate counts"), num=args.num,
                     temperature=args.temperature,
                     seed=args.seed, batch_size=args.batch_size, beam=args.beam, data=args.data or "",
                     device=args.device, progress=not args.no_progress)
    results = run_eval(cfg, args.out)
    print("\n".join(goal_lines(results)))
    print(f"wrote {args.out}/results.json, summary.md, bleu_vs_nfe.png")
    return 0


def _distill(args) -> int:
    import json

    from ardm.tasks.seq2seq.distill import distill_corpus

    apply_threads(args)
    manifest = distill_corpus(args.teacher, args.out, beam=args.beam, batch_size=args.batch_size,
                              data=args.data, num=args.num, progress=not args.no_progress)
    print(json.dumps(manifest, indent=2))
    print(f"wrote {args.out} (train targets distilled; other splits copied)")
    return 0


def _table(args) -> int:
    from pathlib import Path

    from ardm.tasks.seq2seq.grid import grid_lines, merge_results
    from ardm.tasks.seq2seq.report import write_plot

    merged = merge_results(args.results, args.ar_results)
    print("\n".join(grid_lines(merged, args.metric)))
    if args.plot:
        print(f"wrote {write_plot(merged, Path(args.plot))}")
    return 0


def _augment(args) -> int:
    import json

    from ardm.tasks.seq2seq.augment import augment_corpus

    manifest = augment_corpus(args.data, args.out, pair=args.pair, seed=args.seed)
    print(json.dumps(manifest, indent=2))
    print(f"wrote {args.out} (train split augmented; other splits copied)")
    return 0
