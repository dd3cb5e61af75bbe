"""Validation bits/char vs total CPU time for several training runs in one plot (issue 16, SPEC §11.5).

Each run is LABEL=RUN_DIR[@OFFSET_MIN]: its metrics.jsonl validation records are drawn against
elapsed training minutes plus OFFSET_MIN (the pre-training a run started from, e.g. the AR model an
adapted denoiser was initialised from), so runs are compared at equal total CPU time.

    python benchmarks/adaptation_curves.py --out runs/adaptation_curves.png \\
        "from AR=runs/from-ar@30" "scratch=runs/scratch" --point "AR (bundled)=30:2.175"

Diffusion runs log the MDLM NELBO (one t draw per validation window), causal runs the exact NLL.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ardm.evaluation.plots import pyplot, save_figure


def val_curve(run_dir: Path) -> list[tuple[float, float]]:
    """(elapsed minutes, validation bits/token) of a run's metrics.jsonl."""
    recs = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    out = []
    for r in recs:
        if r.get("split") != "val":
            continue
        bits = r.get("val_elbo_bits_per_token", r.get("val_bits_per_token"))
        out.append((r["elapsed_s"] / 60.0, bits))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="LABEL=RUN_DIR[@OFFSET_MIN]")
    ap.add_argument("--out", default="runs/adaptation_curves.png")
    ap.add_argument("--point", action="append", default=[], metavar="LABEL=MIN:BITS",
                    help="a single measured model, e.g. the bundled AR reference 'AR (bundled)=30:2.175'")
    ap.add_argument("--target", type=float, default=2.45, help="draw a horizontal target line (bits/char)")
    ap.add_argument("--ymax", type=float, default=4.0)
    args = ap.parse_args()
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    table = {}
    for spec in args.runs:
        label, rest = spec.split("=", 1)
        path, _, offset = rest.partition("@")
        curve = [(m + float(offset or 0), b) for m, b in val_curve(Path(path))]
        if offset:
            ax.axvline(float(offset), color="0.85", lw=0.8)
        ax.plot(*zip(*curve), marker=".", label=label)
        table[label] = curve[-1]
    for spec in args.point:
        label, rest = spec.split("=", 1)
        m, b = (float(v) for v in rest.split(":"))
        ax.plot([m], [b], marker="*", ms=12, ls="none", label=label)
    ax.axhline(args.target, color="k", ls="--", lw=0.8, label=f"target {args.target}")
    ax.set_xlabel("total CPU minutes (1 core; pre-training of the init included)")
    ax.set_ylabel("validation bits/char (diffusion: NELBO; AR: NLL)")
    ax.set_ylim(top=args.ymax)
    ax.grid(alpha=0.3)
    ax.legend()
    last = {k: {"minutes": round(m, 2), "bits": round(b, 4)} for k, (m, b) in table.items()}
    print(json.dumps({"plot": str(save_figure(fig, Path(args.out))), "last": last}))


if __name__ == "__main__":
    main()
