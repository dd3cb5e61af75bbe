"""AR-to-diffusion adaptation (SPEC §11.5; Gong et al. 2024, arXiv 2410.17891, "DiffuLLaMA").

A trained causal model becomes the starting point of a bidirectional denoiser of the same shape:

- `load_ar_weights`: copy every tensor of a causal checkpoint into the denoiser. Parameters the AR
  model lacks (the per-token time MLP) keep their init; its output layer is zero-initialised
  (ardm/core/model.py), so the initial function is exactly the AR model's.
- Shift (`ModelConfig.shift`, applied in `TransformerDenoiser.forward`): the logits (and hidden
  state) of position i are read at hidden state i - 1, as the AR model read them, so its head keeps its
  meaning. Position 0 has no left neighbour and reads its own state (Dream 7B's convention,
  `torch.cat([logits[:, :1], logits[:, :-1]], 1)`).
- Attention annealing (`anneal_mask`): for the first N optimizer steps a query may attend to its
  left (causal) plus a random share r = step / N of the other keys (DiffuLLaMA's
  `get_anneal_attn_mask`: causal OR Bernoulli(r)); from step N on attention is fully bidirectional.
- The loss is the objective's own (MDLM-weighted absorbing cross-entropy, or epsilon-hybrid).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ardm.core.checkpoint import MODEL_FILE, load_tokenizer, read_checkpoint, read_weights
from ardm.errors import ArdmError

# Fields that fix the tensors' meaning; max_len only sizes RoPE tables (no parameters) unless abs_pos.
SHAPE_FIELDS = ("vocab_size", "n_layer", "n_head", "d_model", "mlp_ratio", "abs_pos")


def anneal_ratio(step: int, anneal_steps: int) -> float:
    """Share of non-causal keys visible at this optimizer step: linear 0 -> 1 over anneal_steps."""
    if anneal_steps <= 0:
        return 1.0
    return min(1.0, step / anneal_steps)


def anneal_mask(L: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """[L, L] bool attention mask (True = may attend): causal OR Bernoulli(ratio); None when ratio >= 1
    (fully bidirectional). One mask per batch, shared by its rows and heads, as in DiffuLLaMA."""
    if ratio >= 1.0:
        return None
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    if ratio <= 0.0:
        return causal
    return causal | (torch.rand(L, L, generator=generator) < ratio)


def set_annealed_attention(model: torch.nn.Module, step: int, anneal_steps: int, L: int, seed: int) -> None:
    """Install this step's anneal mask on `model` (a Denoiser); removes it once annealing is over.
    The mask's randomness is a function of (seed, step) only, so resumed runs draw the same masks."""
    ratio = anneal_ratio(step, anneal_steps)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    mask = anneal_mask(L, ratio, gen)
    device = next(model.parameters()).device
    model.attn_allow = None if mask is None else mask.to(device)


def load_ar_weights(path: str | os.PathLike, cfg, tokenizer, *models) -> dict[str, Any]:
    """Copy a causal checkpoint's weights into each of `models` (denoiser, EMA); its provenance record.

    Refused with an ArdmError: a checkpoint that is not causal, one of another shape (layers, heads,
    width, MLP ratio, vocabulary, absolute positions), one with another tokenizer."""
    ckpt = read_checkpoint(path)
    theirs, mine = ckpt.config.model, cfg.model
    if theirs.attention != "causal":
        raise ArdmError(f"--init-from-ar {path}: not a causal (AR) checkpoint "
                        f"(model.attention={theirs.attention!r}); use --init-from for denoisers")
    diff = [f"model.{k}: {getattr(theirs, k)!r} -> {getattr(mine, k)!r}" for k in SHAPE_FIELDS
            if getattr(theirs, k) != getattr(mine, k)]
    if diff:
        raise ArdmError(f"--init-from-ar {path}: the AR model's shape differs from this run's: "
                        f"{'; '.join(diff)}")
    if load_tokenizer(ckpt).to_json() != tokenizer.to_json():
        raise ArdmError(f"--init-from-ar {path}: its tokenizer differs from the one built for this corpus")
    weights = read_weights(ckpt)
    for m in models:
        if m is None:
            continue
        own = m.state_dict()
        bad = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
        if bad:
            raise ArdmError(f"--init-from-ar {path}: tensors that do not fit this model: "
                            f"{', '.join(bad[:5])}")
        missing, _ = m.load_state_dict(weights, strict=False)
        # only parameters the AR model cannot have may stay at their init
        if any(not k.startswith("time_mlp.") for k in missing):
            raise ArdmError(f"--init-from-ar {path}: the AR checkpoint lacks {', '.join(missing[:5])}")
    return {"path": str(ckpt.path), "model_sha256": ckpt.files[MODEL_FILE]["sha256"],
            "step": ckpt.meta.get("step"), "git_commit": ckpt.meta.get("git_commit"),
            "elapsed_s": ckpt.meta.get("elapsed_s"), "kind": "ar"}


def grow_depth(weights: dict[str, torch.Tensor], old_layers: int, new_layers: int) -> dict[str, torch.Tensor]:
    """A checkpoint's weights for a deeper model of the same width, computing the SAME function
    (function-preserving depth growth, as Net2Net's identity layers): new block i copies old block
    floor(i * old / new); where that old block is already placed, the copy is a NEW block whose two
    output projections (attention and MLP) are zero, so its residual branch adds nothing until
    training moves it. New blocks thus sit evenly between the old ones (6 -> 8: after old 0 and 3).
    Their other weights start from the copied block's, so their first gradients are informative."""
    if not 0 < old_layers <= new_layers:
        raise ArdmError(f"depth growth goes from fewer to more layers, got {old_layers} -> {new_layers}")
    out = {k: v for k, v in weights.items() if not k.startswith("blocks.")}
    placed = -1
    for i in range(new_layers):
        src = i * old_layers // new_layers
        for key, value in weights.items():
            prefix = f"blocks.{src}."
            if key.startswith(prefix):
                name = key[len(prefix):]
                fresh = src == placed and name in ("attn.proj.weight", "mlp.proj.weight")
                out[f"blocks.{i}.{name}"] = torch.zeros_like(value) if fresh else value.clone()
        placed = src
    return out
