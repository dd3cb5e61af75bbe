"""Sampling speed of every sampler: ms per step and generated tokens/s at batch 1 and 16.

    python benchmarks/sampling_speed.py [--checkpoint DIR] [--length 128] [--steps 32]
                                        [--out runs/bench/sampling_speed.json]

Without --checkpoint a randomly initialised denoiser of the `small` preset (and its causal twin
for `ar`) is used: speed does not depend on the weights. Sequential samplers (l2r, ar) run one
step per generated token; the others run --steps steps. Each configuration is run once to warm up
and then timed over --repeats runs; the table shows the median. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ardm.core.config import MODEL_PRESETS, ModelConfig
from ardm.core.model import TransformerDenoiser
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
    args = ap.parse_args()
    torch.manual_seed(0)
    denoiser, causal = models(args.checkpoint, args.length, args.device)
    prompt = torch.tensor([0])
    rows = []
    for name in args.samplers.split(","):
        model = causal if name == "ar" else denoiser
        steps = args.length - 1 if name in SEQUENTIAL else args.steps
        for batch in map(int, args.batches.split(",")):
            kwargs = dict(length=args.length, steps=steps, batch=batch, prompt=prompt, seed=0)
            generate(model, make_sampler(name), **kwargs)  # warm-up
            times, gen = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                gen = generate(model, make_sampler(name), **kwargs)
                times.append(time.perf_counter() - t0)
            wall = statistics.median(times)
            generated = batch * (args.length - 1)
            rows.append({"sampler": name, "batch": batch, "steps": gen.steps, "nfe": gen.nfe,
                         "ms_per_step": 1000 * wall / gen.nfe, "tokens_per_s": generated / wall,
                         "wall_s": wall, "overwrites_effective_per_sample":
                         sum(gen.overwrites_effective) / batch})
    result = {"benchmark": "sampling_speed", "device": args.device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": platform.machine(), "length": args.length,
              "checkpoint": args.checkpoint or "random small preset", "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"device {args.device}, {torch.get_num_threads()} threads, length {args.length} "
          f"({result['checkpoint']})")
    print(f"{'sampler':8s} {'batch':>5s} {'NFE':>5s} {'ms/step':>8s} {'tokens/s':>9s} {'overwrites':>10s}")
    for r in rows:
        print(f"{r['sampler']:8s} {r['batch']:5d} {r['nfe']:5d} {r['ms_per_step']:8.1f} "
              f"{r['tokens_per_s']:9.0f} {r['overwrites_effective_per_sample']:10.1f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
