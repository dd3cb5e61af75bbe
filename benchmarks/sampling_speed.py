"""Sampling speed of every sampler: ms per step and generated tokens/s at batch 1 and 16.

    python benchmarks/sampling_speed.py [--checkpoint DIR] [--length 128] [--steps 32]
                                        [--out runs/bench/sampling_speed.json]

Without --checkpoint a randomly initialised denoiser of the `small` preset (and its causal twin
for `ar`) is used: speed does not depend on the weights. Sequential samplers (l2r, ar) run one
step per generated token; the others run --steps steps. Each configuration is run once to warm up
and then timed over --repeats runs; the table shows the median. Prints a table and writes JSON.

The KV cache (SPEC §11.6; docs/speed.md): the semi-AR sampler (--cache-sampler, default mdlm) on a
block_causal model of --cache-preset (default `small`; random weights, blocks of --block-size;
--cache-width overrides its width) at --cache-lengths, batch 1 and 16, NFE = length /
--tokens-per-step, without and with the exact cache. With --block-checkpoint (a trained
block_causal model) its --ppl-samples samples are also scored, cached and uncached, by --reference
(a causal model): gen-PPL with a 95% bootstrap interval and unigram entropy.
With --approx-checkpoint (a trained bidirectional denoiser) the same for Fast-dLLM's approximate
prefix and dual caches on blocks of --approx-block-size, plus their drift.
--armd-streams S,... adds ARMD strided generation at 256 tokens (random `small` armd model, with and
without its cache) and, with --armd-checkpoint, that model's gen-PPL per S.
--only-cache skips the per-sampler table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ardm.core.checkpoint import git_commit
from ardm.core.config import MODEL_PRESETS, ModelConfig
from ardm.core.model import TransformerDenoiser
from ardm.errors import ArdmError
from ardm.generation.loop import generate
from ardm.generation.registry import SAMPLERS, make_sampler

SEQUENTIAL = ("l2r", "ar")


def models(checkpoint: str | None, length: int, device: str):
    if checkpoint:
        import ardm

        m = ardm.load(checkpoint, device).model
        causal = TransformerDenoiser(ModelConfig(**{**m.cfg.__dict__, "attention": "causal",
                                         "time_conditioning": "none"})).to(device).eval()
        return m, causal
    base = dict(vocab_size=65, max_len=length, **MODEL_PRESETS["small"])
    return (TransformerDenoiser(ModelConfig(**base)).to(device).eval(),
            TransformerDenoiser(ModelConfig(**base, attention="causal", time_conditioning="none"))
            .to(device).eval())


def timed(model, sampler: str, repeats: int, streams: int = 0, **kwargs):
    """(median wall seconds over `repeats` runs after one warm-up, the last Generation)."""
    options = {"streams": streams} if streams else {}
    generate(model, make_sampler(sampler, **options), **kwargs)
    times, gen = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        gen = generate(model, make_sampler(sampler, **options), **kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), gen


def cache_rows(args) -> list[dict]:
    """Semi-AR sampling on a block_causal model, without and with the exact KV cache."""
    lengths = [int(v) for v in args.cache_lengths.split(",") if v]
    if not lengths:
        return []
    size = {**MODEL_PRESETS[args.cache_preset], **({"d_model": args.cache_width} if args.cache_width else {})}
    cfg = ModelConfig(vocab_size=65, max_len=max(lengths), attention="block_causal",
                      block_size=args.block_size, **size)
    torch.manual_seed(0)
    model = TransformerDenoiser(cfg).to(args.device).eval()
    rows = []
    for length in lengths:
        for batch in map(int, args.batches.split(",")):
            speed = {}
            for cache in ("none", "exact"):
                wall, gen = timed(model, args.cache_sampler, args.repeats, length=length,
                                  steps=length // args.tokens_per_step, batch=batch, prompt=torch.tensor([0]),
                                  seed=0, cache=cache)
                speed[cache] = batch * (length - 1) / wall
                rows.append({"sampler": args.cache_sampler, "length": length, "batch": batch,
                             "cache": cache, "preset": args.cache_preset, "d_model": cfg.d_model,
                             "block_size": args.block_size,
                             "nfe": gen.nfe,
                             "ms_per_step": 1000 * wall / gen.nfe,
                             "token_forwards_per_sample": sum(gen.token_forwards) / batch,
                             "tokens_per_s": speed[cache], "speedup": speed[cache] / speed["none"]})
    return rows


def quality_rows(args, checkpoint: str | None, caches: tuple[str, ...], block_size: int = 0) -> list[dict]:
    """A trained model's samples under each cache: gen-PPL [95% CI] under --reference, entropy,
    speed, and for an approximate cache its drift (mean per-step KL(full || cached), one extra run)."""
    if not checkpoint:
        return []
    import ardm
    from ardm.evaluation.metrics import generative_nll, perplexity, ppl_ci, unigram_entropy

    loaded, ref = ardm.load(checkpoint, args.device), ardm.load(args.reference, args.device)
    length = loaded.config.data.seq_len
    prompt = "\n"
    rows, texts = [], {}
    for cache in caches:
        kw = dict(length=length, steps=length // args.tokens_per_step, block_size=block_size,
                  prompt=torch.tensor(loaded.tokenizer.encode(prompt)), cache=cache,
                  approximate=cache in ("prefix", "dual"))
        t0, tokens, forwards, nfe = time.perf_counter(), [], 0, 0
        for first in range(0, args.ppl_samples, 16):
            gen = generate(loaded.model, make_sampler(args.cache_sampler),
                           batch=min(16, args.ppl_samples - first), seed=first, **kw)
            tokens += [row[1:] for row in gen.tokens.tolist()]
            forwards, nfe = forwards + sum(gen.token_forwards), gen.nfe
        wall = time.perf_counter() - t0
        texts[cache] = [loaded.tokenizer.decode(t) for t in tokens]
        nll = generative_nll(ref.model, ref.tokenizer, texts[cache], prompt, device=args.device)
        lo, hi = ppl_ci(nll)
        row = {"checkpoint": checkpoint, "reference": args.reference, "cache": cache,
               "block_size": block_size, "length": length, "samples": len(tokens), "nfe": nfe,
               "gen_ppl": perplexity(nll),
               "gen_ppl_ci": [lo, hi], "entropy": statistics.mean(unigram_entropy(t) for t in tokens),
               "token_forwards_per_sample": forwards / len(tokens),
               "tokens_per_s": len(tokens) * (length - 1) / wall,
               "identical_to_uncached": sum(a == b for a, b in zip(texts[caches[0]], texts[cache]))}
        if kw["approximate"]:
            drift = generate(loaded.model, make_sampler(args.cache_sampler), batch=16, seed=0,
                             cache_drift=True, **kw).cache_drift or []
            row["drift_kl_mean"], row["drift_kl_max"] = statistics.mean(drift), max(drift)
        rows.append(row)
    return rows


def armd_rows(args) -> list[dict]:
    """ARMD strided generation (SPEC §5.3) at 256 tokens, S streams, without and with its cache:
    speed on a random `small` armd model; with --armd-checkpoint its gen-PPL per S (cached)."""
    streams = [int(v) for v in args.armd_streams.split(",") if v]
    if not streams:
        return []
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=65, max_len=256, attention="armd", time_conditioning="none",
                      **MODEL_PRESETS["small"])
    model = TransformerDenoiser(cfg).to(args.device).eval()
    rows = []
    for S in streams:
        for batch in map(int, args.batches.split(",")):
            for cache in ("none", "exact"):
                wall, gen = timed(model, "strided", 1, length=256, steps=256 // S, batch=batch, seed=0,
                                  cache=cache, streams=S)
                rows.append({"sampler": f"strided S={S}", "length": 256, "batch": batch, "cache": cache,
                             "nfe": gen.nfe, "token_forwards_per_sample": sum(gen.token_forwards) / batch,
                             "ms_per_step": 1000 * wall / gen.nfe, "tokens_per_s": batch * 256 / wall})
    if args.armd_checkpoint:
        import ardm
        from ardm.evaluation.metrics import generative_nll, perplexity, ppl_ci, unigram_entropy

        loaded, ref = ardm.load(args.armd_checkpoint, args.device), ardm.load(args.reference, args.device)
        for S in streams:
            tokens = []
            for first in range(0, args.ppl_samples, 16):
                gen = generate(loaded.model, make_sampler("strided", streams=S), length=256, steps=256 // S,
                               batch=min(16, args.ppl_samples - first), seed=first, cache="exact")
                tokens += gen.tokens.tolist()
            nll = generative_nll(ref.model, ref.tokenizer, [loaded.tokenizer.decode(t) for t in tokens], "\n",
                                 device=args.device)
            rows.append({"sampler": f"strided S={S}", "checkpoint": args.armd_checkpoint, "length": 256,
                         "nfe": gen.nfe, "samples": len(tokens), "gen_ppl": perplexity(nll),
                         "gen_ppl_ci": list(ppl_ci(nll)),
                         "entropy": statistics.mean(unigram_entropy(t) for t in tokens)})
    return rows


def sampler_rows(args) -> list[dict]:
    torch.manual_seed(0)
    denoiser, causal = models(args.checkpoint, args.length, args.device)
    prompt = torch.tensor([0])
    rows = []
    for name in args.samplers.split(","):
        model = causal if name == "ar" else denoiser
        steps = args.length - 1 if name in SEQUENTIAL else args.steps
        for batch in map(int, args.batches.split(",")):
            wall, gen = timed(model, name, args.repeats, length=args.length, steps=steps, batch=batch,
                              prompt=prompt, seed=0)
            generated = batch * (args.length - 1)
            rows.append({"sampler": name, "batch": batch, "steps": gen.steps, "nfe": gen.nfe,
                         "ms_per_step": 1000 * wall / gen.nfe, "tokens_per_s": generated / wall,
                         "wall_s": wall, "overwrites_effective_per_sample":
                         sum(gen.overwrites_effective) / batch})
    return rows


def report(result: dict) -> None:
    args = result["args"]
    print(f"device {args['device']}, {result['threads']} threads, length {result['length']} "
          f"({result['checkpoint']})")
    if result["rows"]:
        print("sampler  batch   NFE  ms/step  tokens/s overwrites")
    for r in result["rows"]:
        print(f"{r['sampler']:8s} {r['batch']:5d} {r['nfe']:5d} {r['ms_per_step']:8.1f} "
              f"{r['tokens_per_s']:9.0f} {r['overwrites_effective_per_sample']:10.1f}")
    if result["cache_rows"]:
        width = f" d_model {args['cache_width']}" if args["cache_width"] else ""
        print(f"\nsemi-AR {args['cache_sampler']}, block_causal {args['cache_preset']}{width} "
              f"(random weights), blocks of {args['block_size']}")
        print("length batch cache   NFE fwd/sample  ms/step  tokens/s speedup")
    for r in result["cache_rows"]:
        print(f"{r['length']:6d} {r['batch']:5d} {r['cache']:>5s} {r['nfe']:5d} "
              f"{r['token_forwards_per_sample']:10.0f} {r['ms_per_step']:8.1f} {r['tokens_per_s']:9.0f} "
              f"{r['speedup']:6.2f}x")
    for r in result["quality_rows"]:
        lo, hi = r["gen_ppl_ci"]
        drift = ""
        if "drift_kl_mean" in r:
            drift = f", drift KL {r['drift_kl_mean']:.4f} (max {r['drift_kl_max']:.4f})"
        print(f"{r['checkpoint']} cache {r['cache']}: gen-PPL {r['gen_ppl']:.2f} [{lo:.2f}, {hi:.2f}], "
              f"entropy {r['entropy']:.3f}, {r['tokens_per_s']:.0f} tokens/s, "
              f"{r['token_forwards_per_sample']:.0f} token-forwards/sample ({r['samples']} samples, "
              f"NFE {r['nfe']}){drift}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="a trained denoiser (default: random `small` model)")
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=32, help="K for the non-sequential samplers")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="runs/bench/sampling_speed.json")
    ap.add_argument("--cache-lengths", default="128,256,512",
                    help="cached vs uncached semi-AR rows at these lengths ('' skips them)")
    ap.add_argument("--cache-sampler", default="mdlm", help="the policy inside each block")
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--cache-preset", default="small", choices=sorted(MODEL_PRESETS),
                    help="model size of the cache rows (speed does not depend on the weights)")
    ap.add_argument("--cache-width", type=int, default=0,
                    help="override the preset's d_model (e.g. 8: almost no arithmetic, so the rows "
                         "measure the per-operation overhead of a step)")
    ap.add_argument("--tokens-per-step", type=int, default=4, help="semi-AR rows: NFE = length / this")
    ap.add_argument("--block-checkpoint", help="a trained block_causal model: gen-PPL rows, cached and not")
    ap.add_argument("--reference", default="checkpoints/shakespeare-char-ar", help="causal gen-PPL scorer")
    ap.add_argument("--ppl-samples", type=int, default=32)
    ap.add_argument("--approx-checkpoint",
                    help="a trained bidirectional denoiser: Fast-dLLM prefix / dual rows (gen-PPL, drift)")
    ap.add_argument("--approx-block-size", type=int, default=32, help="its semi-AR blocks")
    ap.add_argument("--armd-streams", default="", help="ARMD strided rows for these S, e.g. 1,2,4,8")
    ap.add_argument("--armd-checkpoint", help="a trained armd model: gen-PPL of strided generation per S")
    ap.add_argument("--only-cache", action="store_true", help="skip the per-sampler table")
    args = ap.parse_args()
    commit = git_commit()  # the code that runs (read before a long run, not after)
    approx = ("none", "prefix", "dual")
    try:  # a bad size, length or checkpoint: the library's one-line message, nothing written
        rows = [] if args.only_cache else sampler_rows(args)
        cached = cache_rows(args)
        armd = armd_rows(args)
        quality = (quality_rows(args, args.block_checkpoint, ("none", "exact"))
                   + quality_rows(args, args.approx_checkpoint, approx, args.approx_block_size))
    except ArdmError as e:
        ap.error(str(e))
    result = {"benchmark": "sampling_speed", "device": args.device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": platform.machine(), "length": args.length,
              "git_commit": commit, "args": vars(args),
              "checkpoint": args.checkpoint or "random small preset", "rows": rows, "cache_rows": cached,
              "quality_rows": quality, "armd_rows": armd}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    report(result)
    for r in armd:
        if "gen_ppl" in r:
            lo, hi = r["gen_ppl_ci"]
            print(f"{r['checkpoint']} {r['sampler']}: NFE {r['nfe']}, gen-PPL {r['gen_ppl']:.2f} [{lo:.2f}, "
                  f"{hi:.2f}], entropy {r['entropy']:.3f} ({r['samples']} samples)")
        else:
            print(f"armd {r['sampler']} batch {r['batch']:2d} cache {r['cache']:>5s}: NFE {r['nfe']:3d}, "
                  f"{r['token_forwards_per_sample']:.0f} stream tokens/sample, "
                  f"{r['tokens_per_s']:.0f} tokens/s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
