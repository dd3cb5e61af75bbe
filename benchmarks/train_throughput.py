"""Training throughput and model FLOP utilisation (MFU) against the matmul peak measured in the
same run, for two model sizes. Prints a table and writes JSON.

    python benchmarks/train_throughput.py [--device cpu] [--recipes shakespeare-char,shakespeare-char-ar]
                                          [--out runs/bench/train_throughput.json]

FLOPs per trained token (PaLM appendix B): 6 * N + 12 * n_layer * d * seq, N = non-embedding
parameters including the output head (embedding lookups are free). The peak is the best fp32
(or bf16 with --bf16) GEMM rate over square and model-shaped products on the same device.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ardm.core.config import MODEL_PRESETS, DataConfig, ModelConfig, RunConfig, TrainConfig
from ardm.core.model import TransformerDenoiser
from ardm.core.objectives import make_objective
from ardm.training.recipes import get_recipe


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device, dtype, seconds: float = 1.0) -> dict:
    """Best GEMM rate (FLOP/s) over a few shapes, each timed for about `seconds`."""
    shapes = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 256, 1024), (4096, 1024, 256)]
    if device.type == "cuda":
        shapes = [(8192, 8192, 8192), (16384, 4096, 4096)]
    rates = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        sync(device)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        sync(device)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n * reps / (time.perf_counter() - t0)
    return {"peak_flops": max(rates.values()), "by_shape": rates}


def preset_config(preset: str, batch: int, seq: int) -> RunConfig:
    """A diffusion run of a model preset (the default rows)."""
    mcfg = ModelConfig(vocab_size=65, max_len=seq, **MODEL_PRESETS[preset])
    return RunConfig(model=mcfg, data=DataConfig(seq_len=seq), train=TrainConfig(batch_size=batch))


def train_rate(label: str, cfg: RunConfig, device, steps: int, bf16: bool) -> dict:
    """Optimizer steps/s of `cfg`'s model, objective, batch and sequence length on random tokens."""
    mcfg, batch, seq = cfg.model, cfg.train.batch_size, min(cfg.data.seq_len, cfg.model.max_len)
    model = TransformerDenoiser(mcfg).to(device)
    objective = make_objective(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, mcfg.vocab_size, (batch, seq), generator=gen).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast:
            loss, _ = objective.loss(model, x, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    dt = (time.perf_counter() - t0) / steps
    n_params = model.num_params(non_embedding=True) + model.head.weight.numel()
    flops_per_token = 6 * n_params + 12 * mcfg.n_layer * mcfg.d_model * seq
    tokens_per_s = batch * seq / dt
    return {"name": label, "recipe": cfg.recipe, "objective": cfg.train.objective, "noise": cfg.noise.kind,
            "n_layer": mcfg.n_layer, "d_model": mcfg.d_model,
            "params_non_embedding_with_head": n_params, "batch": batch, "seq_len": seq,
            "ms_per_step": 1000 * dt, "tokens_per_s": tokens_per_s,
            "flops_per_token": flops_per_token, "model_flops_per_s": flops_per_token * tokens_per_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="small,medium", help="model presets (ardm.core.config.MODEL_PRESETS)")
    ap.add_argument("--recipes", default="",
                    help="also these recipes as they train (model, objective, noise, batch, seq_len), "
                         "e.g. shakespeare-char,shakespeare-char-ar,shakespeare-char-from-ar")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (GPUs)")
    ap.add_argument("--out", default="runs/bench/train_throughput.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak(device, torch.bfloat16 if args.bf16 else torch.float32)
    runs = [(p, preset_config(p, args.batch_size, args.seq_len)) for p in args.sizes.split(",") if p]
    for name in filter(None, args.recipes.split(",")):
        cfg = get_recipe(name)
        cfg.model.vocab_size = cfg.model.vocab_size or 65  # set from the corpus when training; chars here
        runs.append((name, cfg))
    rows = []
    for label, cfg in runs:
        r = train_rate(label, cfg, device, args.steps, args.bf16)
        r["mfu"] = r["model_flops_per_s"] / peak["peak_flops"]
        rows.append(r)
    result = {"benchmark": "train_throughput", "device": str(device), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor(),
              "dtype": "bf16" if args.bf16 else "fp32", "matmul_peak": peak, "models": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"device {device}, {torch.get_num_threads()} threads, measured matmul peak "
          f"{peak['peak_flops'] / 1e9:.1f} GFLOP/s ({result['dtype']})")
    print(f"{'model or recipe':26s} {'layers':>6s} {'width':>6s} {'params':>9s} {'tokens/s':>10s} "
          f"{'GFLOP/s':>8s} {'MFU':>6s}")
    for r in rows:
        n = r["params_non_embedding_with_head"]
        print(f"{r['name']:26s} {r['n_layer']:6d} {r['d_model']:6d} {n:9,d} "
              f"{r['tokens_per_s']:10,.0f} {r['model_flops_per_s'] / 1e9:8.1f} {r['mfu']:6.1%}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
