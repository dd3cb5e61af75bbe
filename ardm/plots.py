"""Report plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path


def plot_training_curves(runs: dict[str, Path], out_png: Path) -> Path:
    """Train loss and validation bits/token vs step for each run's metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for label, run_dir in runs.items():
        recs = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
        train = [(r["step"], r["loss"]) for r in recs if r.get("split") == "train"]
        val = [(r["step"], r.get("val_elbo_bits_per_token", r.get("val_bits_per_token")))
               for r in recs if r.get("split") == "val"]
        if train:
            ax_train.plot(*zip(*train), label=label)
        if val:
            ax_val.plot(*zip(*val), marker="o", label=label)
    ax_train.set(title="training loss, nats/token\n(each model's own objective)", xlabel="step",
                 ylabel="loss")
    ax_val.set(title="validation bits/token\n(diffusion: ELBO bound; AR: exact NLL)",
               xlabel="step", ylabel="bits/token")
    for ax in (ax_train, ax_val):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
