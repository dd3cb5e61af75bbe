"""`ardm demo`: train a tiny denoiser and its AR twin on the bundled corpus, measure likelihood,
sample from both, and write a short report with plots. Offline, about a minute on 2 CPU cores.

(The evaluation issue replaces this with a comparison of samplers on bundled checkpoints.)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from .checkpoint import atomic_write_text, git_commit, load
from .data import load_corpus
from .generate import SAMPLERS, generate
from .likelihood import evaluate_text
from .plots import plot_training_curves
from .recipes import get_recipe
from .train import train


def run_demo(out: Path, max_steps: int = 300, progress: bool = True) -> int:
    out = Path(out)
    runs = {"diffusion": out / "diffusion", "ar": out / "ar"}
    for d in runs.values():  # the demo owns these two sub-folders; re-running starts them afresh
        shutil.rmtree(d, ignore_errors=True)
    t_start = time.perf_counter()
    results: dict = {"git_commit": git_commit(), "max_steps": max_steps, "models": {}}
    for kind, recipe in (("diffusion", "demo-char"), ("ar", "demo-char-ar")):
        cfg = get_recipe(recipe)
        cfg.train.max_steps = max_steps
        print(f"[demo] training {recipe} for {max_steps} steps on the bundled corpus ...", flush=True)
        train(cfg, runs[kind], progress=progress)
        loaded = load(runs[kind])
        corpus = load_corpus(loaded.config.data)
        rep = evaluate_text(loaded.model, loaded.tokenizer, corpus.val, loaded.config.data.seq_len, draws=16)
        prompt = torch.tensor(loaded.tokenizer.encode("\n"))
        samples = {}
        if kind == "ar":
            g = generate(loaded.model, SAMPLERS["ar"](), length=64, steps=64 - len(prompt), batch=3,
                         prompt=prompt, seed=0)
            samples["ar"] = {"nfe": g.nfe, "text": [loaded.tokenizer.decode(r.tolist()) for r in g.tokens]}
        else:
            for steps in (16, 64):
                g = generate(loaded.model, SAMPLERS["mdlm"](), length=64, steps=steps, batch=3,
                             prompt=prompt, seed=0)
                samples[f"mdlm@{steps}"] = {"nfe": g.nfe,
                                            "text": [loaded.tokenizer.decode(r.tolist()) for r in g.tokens]}
        results["models"][recipe] = {"likelihood": rep.to_dict(), "samples": samples,
                                     "data_sha256": corpus.sha256, "config": loaded.config.to_dict()}
    plot = plot_training_curves({"diffusion (demo-char)": runs["diffusion"], "AR (demo-char-ar)": runs["ar"]},
                                out / "training_curves.png")
    results["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    lines = ["# ardm demo", "",
             f"Tiny models trained for {max_steps} steps on the bundled public-domain corpus "
             f"(~9 KB; far too small to learn English: this run shows the pipeline, not quality).", "",
             "| model | estimator | val bits/char |", "|---|---|---|"]
    for recipe, r in results["models"].items():
        lk = r["likelihood"]
        se = f" ± {lk['bits_per_char_se']:.3f}" if lk["bits_per_char_se"] else ""
        lines.append(f"| {recipe} | {lk['estimator']} | {lk['bits_per_char']:.3f}{se} |")
    lines += ["", "## Samples (prompt: a newline)", ""]
    for recipe, r in results["models"].items():
        for name, smp in r["samples"].items():
            lines.append(f"**{recipe}, {name}** (NFE {smp['nfe']}):")
            lines += ["```", *[s.strip("\n") for s in smp["text"]], "```", ""]
    lines += [f"![training curves]({plot.name})", "", f"git commit {results['git_commit']}; "
              f"wall time {results['wall_time_s']} s. Full numbers: results.json."]
    report = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", report)
    print("\n" + report)
    print(f"[demo] report: {out / 'report.md'} (plots: {plot})")
    return 0
