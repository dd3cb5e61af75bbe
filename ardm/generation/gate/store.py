"""Trained gates on disk, beside the denoiser they were trained for (SPEC §6.8, §7).

A gate is a folder, by default `<checkpoint folder>/gate/`, written atomically:
    gate.safetensors   the scorer's parameters (LinearGate: b0, raw_betas; MLPGate: norm.*, mlp.*)
    gate.json          {"format": "ardm-gate", "format_version", "kind": "linear"|"mlp", "hyperparameters",
                        "stats": frozen normalisation statistics, "sampler": deployment defaults of the
                        gate sampler (prior alpha/delta, combine, mask, theta, fill, mode, y_tilde),
                        "denoiser": {"model_sha256", "checkpoint", "recipe"}, "training": recipe,
                        "metrics": {"initial", "final"}, "files": sha256 + bytes, "git_commit", ...}
    metrics.jsonl      gate training's JSON lines (when written by `ardm train-gate`)

A gate only makes sense for the weights it was trained on, so loading it against a checkpoint whose
model.safetensors has another sha256 is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ardm.core.checkpoint import (
    MODEL_FILE,
    Checkpoint,
    atomic_folder,
    file_record,
    git_commit,
    read_checkpoint,
)
from ardm.errors import ArdmError
from ardm.generation.gate.scoring import LinearGate, MLPGate, SignalStats, make_scorer
from ardm.version import __version__

GATE_DIR, GATE_WEIGHTS, GATE_JSON = "gate", "gate.safetensors", "gate.json"
GATE_FORMAT = "ardm-gate"
GATE_FORMAT_VERSION = 1
# gate sampler options a trained gate carries as its defaults (what it was trained with)
DEPLOY_OPTIONS = ("prior", "alpha", "delta", "combine", "mask", "theta", "fill", "mode", "eta", "reveal",
                  "y_tilde", "margin")


@dataclass
class TrainedGate:
    scorer: nn.Module  # eval mode, on the CPU
    stats: SignalStats
    options: dict[str, Any]  # gate sampler defaults (DEPLOY_OPTIONS)
    doc: dict[str, Any]  # the whole gate.json
    path: Path

    @property
    def kind(self) -> str:
        return self.doc["kind"]


def model_sha256(ckpt: Checkpoint) -> str:
    return ckpt.files[MODEL_FILE]["sha256"]


def write_gate_files(folder: Path, scorer: LinearGate | MLPGate, stats: SignalStats, options: dict[str, Any],
                     ckpt: Checkpoint, training: dict[str, Any] | None = None,
                     metrics: dict[str, Any] | None = None) -> None:
    """Write gate.safetensors and gate.json into `folder` (an `atomic_folder` under construction)."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in scorer.state_dict().items()}
    save_file(tensors, folder / GATE_WEIGHTS, metadata={"format": GATE_FORMAT})
    doc = {"format": GATE_FORMAT, "format_version": GATE_FORMAT_VERSION, "ardm_version": __version__,
           "kind": scorer.kind, "hyperparameters": scorer.hyperparameters(), "stats": stats.to_dict(),
           "sampler": {k: options[k] for k in DEPLOY_OPTIONS if k in options},
           "denoiser": {"model_sha256": model_sha256(ckpt), "checkpoint": str(ckpt.path),
                        "recipe": ckpt.config.recipe},
           "training": training or {}, "metrics": metrics or {},
           "files": {GATE_WEIGHTS: file_record(folder / GATE_WEIGHTS)}, "git_commit": git_commit()}
    (folder / GATE_JSON).write_text(json.dumps(doc, indent=2), encoding="utf-8")


def save_gate(folder: str | os.PathLike, scorer: LinearGate | MLPGate, stats: SignalStats,
              options: dict[str, Any], ckpt: Checkpoint, training: dict[str, Any] | None = None,
              metrics: dict[str, Any] | None = None) -> Path:
    """Write a gate folder atomically (replacing an existing one)."""
    with atomic_folder(folder) as tmp:
        write_gate_files(tmp, scorer, stats, options, ckpt, training, metrics)
    return Path(folder)


def find_gate(ckpt: Checkpoint) -> Path | None:
    """The gate folder beside a checkpoint, if there is one."""
    folder = ckpt.path / GATE_DIR
    return folder if (folder / GATE_JSON).exists() else None


def default_gate_choice(ckpt: Checkpoint, gate_path: str | None = None) -> str:
    """What a `gate` that does not choose means on `ckpt` (the one rule every command follows):
    "learned" when a gate is given (path) or bundled beside the checkpoint, else "linear"."""
    return "learned" if gate_path or find_gate(ckpt) is not None else "linear"


def load_gate(path: str | os.PathLike, ckpt: Checkpoint) -> TrainedGate:
    """Read a gate folder and check that it was trained for this checkpoint's weights."""
    folder = Path(path)
    if not (folder / GATE_JSON).exists():
        raise ArdmError(f"no gate in {folder} (expected {GATE_JSON} and {GATE_WEIGHTS}; "
                        "train one with `ardm train-gate`)")
    try:
        doc = json.loads((folder / GATE_JSON).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArdmError(f"gate {folder}: {GATE_JSON} is corrupted ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != GATE_FORMAT:
        raise ArdmError(f"gate {folder}: {GATE_JSON} is not an ardm gate file")
    if doc.get("format_version") != GATE_FORMAT_VERSION:
        raise ArdmError(f"gate {folder} has format version {doc.get('format_version')}, this ardm "
                        f"reads version {GATE_FORMAT_VERSION}")
    want = doc.get("denoiser", {}).get("model_sha256")
    if want != model_sha256(ckpt):
        raise ArdmError(f"gate {folder} was trained for another denoiser "
                        f"({doc['denoiser'].get('checkpoint')}, model sha256 {str(want)[:12]}…) "
                        f"than {ckpt.path} (sha256 "
                        f"{model_sha256(ckpt)[:12]}…); retrain it with `ardm train-gate --checkpoint "
                        f"{ckpt.path}` or sample with --set gate=linear")
    weights = folder / GATE_WEIGHTS
    info = doc.get("files", {}).get(GATE_WEIGHTS)
    if not weights.exists() or info is None or file_record(weights) != info:
        raise ArdmError(f"gate {folder}: {GATE_WEIGHTS} is missing, truncated or altered")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ArdmError(f"gate {folder}: cannot read {GATE_WEIGHTS} ({e})") from None
    hyper = {"d_model": ckpt.config.model.d_model, **doc.get("hyperparameters", {})}
    scorer = make_scorer(doc["kind"], **hyper)
    try:
        scorer.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ArdmError(f"gate {folder}: weights do not match its kind {doc['kind']!r} "
                        f"({str(e).splitlines()[0]})") from None
    return TrainedGate(scorer.eval(), SignalStats.from_dict(doc["stats"]), dict(doc.get("sampler", {})),
                       doc, folder)


def gate_sampler(checkpoint: str | os.PathLike, explicit: dict[str, Any], gate_path: str | None = None,
                 device: str | torch.device = "cpu"):
    """The gate sampler `ardm sample --sampler gate` runs, and a note for the user (or None).

    explicit: the options the user set (--set). gate=linear|none: the untrained gate. Otherwise the
    gate in `gate_path` or beside the checkpoint, with its stored defaults under the explicit
    options; when there is none, gate=learned is an error and no choice falls back to the linear
    default gate with a note."""
    from ardm.generation.gate.sampler import GateSampler

    choice = explicit.get("gate")
    if choice in ("linear", "none"):
        if gate_path:
            raise ArdmError(f"--gate {gate_path} conflicts with --set gate={choice}")
        return GateSampler(**explicit), None
    ckpt = read_checkpoint(checkpoint, verify=False)
    if default_gate_choice(ckpt, gate_path) == "linear":
        if choice == "learned":
            raise ArdmError(f"gate=learned but {ckpt.path} has no trained gate ({ckpt.path / GATE_DIR}); "
                            f"train one with `ardm train-gate --checkpoint {checkpoint}` or pass --gate PATH")
        return GateSampler(**explicit), (f"note: no trained gate in {ckpt.path / GATE_DIR}; using the "
                                         "linear default gate (train one with `ardm train-gate`)")
    path = Path(gate_path) if gate_path else ckpt.path / GATE_DIR
    trained = load_gate(path, ckpt)
    options = {**trained.options, **explicit, "gate": "learned"}
    sampler = GateSampler(scorer=trained.scorer.to(device), stats=trained.stats, **options)
    return sampler, f"note: using the trained {trained.kind} gate in {path}"
