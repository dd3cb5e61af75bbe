"""The phases around the training loop: set up a run, restore it, save it (nanoGPT's prologue).

`setup` builds everything a run needs (corpus, tokenizer, objective, data sampler, model, EMA,
optimizer) into one `Run`; `restore` continues from a run directory's training state or starts from
another checkpoint's weights (`--init-from`); `save` writes an atomic checkpoint. The order of the
random draws here is part of the exact-resume contract (tests/training/test_loop.py): keep it.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ardm.core.checkpoint import (
    LATEST,
    MODEL_FILE,
    STATE_FILE,
    git_commit,
    load_tokenizer,
    read_checkpoint,
    read_weights,
    save_run_checkpoint,
)
from ardm.core.config import RunConfig, config_diff
from ardm.core.encoder_decoder import build_model
from ardm.core.model import TransformerDenoiser
from ardm.core.objectives import make_objective
from ardm.core.tokenizer import Tokenizer, tokenizer_from_json
from ardm.data.corpus import Corpus
from ardm.data.parallel import Truncation, pair_records
from ardm.data.sources import load_corpus
from ardm.data.tokens import BlockSampler, encode, train_tokenizer
from ardm.errors import ArdmError
from ardm.training.adaptation import grow_depth, load_ar_weights
from ardm.training.distributed import Distributed

# Changing these on --resume does not change what is being trained, only how long or how it is logged.
RESUMABLE_KEYS = {"train.max_steps", "train.max_minutes", "train.eval_interval", "train.eval_batches",
                  "train.ckpt_interval", "train.log_interval", "train.device", "train.threads",
                  "data.path"}


@dataclass
class Run:
    """Everything one training run holds; the loop advances `step`, `tokens_seen` and `elapsed`."""

    cfg: RunConfig
    out: Path
    device: torch.device
    ddp: Distributed
    corpus: Corpus
    tokenizer: Tokenizer
    objective: Any
    sampler: BlockSampler
    val_ids: torch.Tensor
    val_clean: torch.Tensor | None
    noise_gen: torch.Generator
    model: TransformerDenoiser
    ema: TransformerDenoiser | None
    opt: torch.optim.Optimizer
    step: int = 0
    tokens_seen: int = 0
    elapsed: float = 0.0
    init_meta: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_model(self) -> TransformerDenoiser:
        """The weights that are validated and saved: the EMA when there is one."""
        return self.ema or self.model


def prepare_run_dir(out: Path, cfg: RunConfig, resume: bool) -> tuple[str | None, dict | None]:
    """Check the run directory against --resume; return (tokenizer JSON, training state) to resume."""
    has_ckpt = (out / LATEST).exists()
    if has_ckpt and not resume:
        raise ArdmError(f"{out} already holds a training run; pass --resume to continue it "
                        "or choose another --out")
    if resume and not has_ckpt:
        raise ArdmError(f"--resume: no checkpoint in {out} (expected {out / LATEST})")
    if not resume:
        return None, None
    ckpt = read_checkpoint(out)
    state_path = ckpt.state_path()
    if state_path is None:
        raise ArdmError(f"--resume: {ckpt.path} has no {STATE_FILE} (exported checkpoints cannot resume)")
    saved = ckpt.config.to_dict()
    cfg.model.vocab_size = saved["model"]["vocab_size"]  # recipes leave it 0 (set from the tokenizer)
    diff = [d for d in config_diff(saved, cfg.to_dict()) if d.split(":")[0] not in RESUMABLE_KEYS]
    if diff:
        raise ArdmError("--resume with a different config than the run in "
                        f"{out}: {'; '.join(diff)}")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ArdmError(f"--resume: cannot read {state_path} ({e})") from None
    return load_tokenizer(ckpt).to_json(), state


def agree_on_run_dir(out: Path, cfg: RunConfig, resume: bool, ddp: Distributed):
    """Rank 0 checks the run directory; every rank learns its verdict (a failure stops all ranks)."""
    tok_json, state, verdict = None, None, "ok"
    if ddp.main:
        try:
            tok_json, state = prepare_run_dir(out, cfg, resume)
        except ArdmError as e:
            if not ddp.enabled:
                raise
            verdict = str(e)
    if ddp.enabled:
        verdict = ddp.broadcast_str(verdict if ddp.main else None) or "ok"
        if verdict != "ok":
            raise ArdmError(verdict)
        resume_flag = ddp.broadcast_str("1" if state is not None else "0") == "1"
        if resume_flag and not ddp.main:
            _, state = prepare_run_dir(out, cfg, True)
    return tok_json, state


def clean_masks(corpus: Corpus, train_ids: torch.Tensor, val_ids: torch.Tensor):
    """The corpus's clean masks (e.g. Sudoku givens) as tensors aligned with the token ids, or Nones."""
    if corpus.train_clean is None or corpus.val_clean is None:
        return None, None
    if len(corpus.train_clean) != train_ids.numel() or len(corpus.val_clean) != val_ids.numel():
        raise ArdmError(f"corpus {corpus.source} marks clean positions per character, so it needs "
                        "--set data.tokenizer=char (one token per character)")
    return torch.from_numpy(corpus.train_clean), torch.from_numpy(corpus.val_clean)


def _pair_streams(cfg: RunConfig, corpus: Corpus, tokenizer: Tokenizer, ddp: Distributed):
    """(train ids, train clean, val ids, val clean) of a parallel corpus; truncations are printed."""
    out = []
    for name, pairs in (("train", corpus.train_pairs), ("val", corpus.val_pairs)):
        cut = Truncation()
        out += pair_records(tokenizer, pairs or [], cfg.data, cut)
        if ddp.main and (cut.sources or cut.targets):
            print(f"ardm: {name}: truncated {cut.sources} source(s) to data.source_len={cfg.data.source_len} "
                  f"and {cut.targets} target(s) to data.target_len={cfg.data.target_len} "
                  f"of {len(pairs or [])} pairs", file=sys.stderr)
    return tuple(out)


def _tokenizer(cfg: RunConfig, corpus: Corpus, tok_json: str | None, ddp: Distributed) -> Tokenizer:
    if tok_json is None:
        tok_json = ddp.broadcast_str(train_tokenizer(cfg.data, corpus).to_json() if ddp.main else None)
    elif ddp.enabled:
        tok_json = ddp.broadcast_str(tok_json if ddp.main else None)
    assert tok_json is not None
    tokenizer = tokenizer_from_json(tok_json)
    if cfg.model.vocab_size not in (0, tokenizer.vocab_size):
        raise ArdmError(f"model.vocab_size={cfg.model.vocab_size} but the tokenizer has "
                        f"{tokenizer.vocab_size} symbols (leave it 0 to take the tokenizer's)")
    cfg.model.vocab_size = tokenizer.vocab_size
    return tokenizer


def starting_tokenizer(cfg: RunConfig, init_from: str | os.PathLike | None) -> str | None:
    """The tokenizer (JSON) of the checkpoint a new run starts from (--init-from, --init-from-ar), which
    the run keeps: its weights belong to those ids, whatever the new corpus would build (e.g. a
    distilled copy of the training targets); None for a run from scratch."""
    source = init_from or cfg.train.init_from_ar
    return load_tokenizer(read_checkpoint(source)).to_json() if source else None


def _optimizer(model: TransformerDenoiser, cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (embeddings included), none on gains and biases."""
    tc = cfg.train
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=tc.lr, betas=(0.9, tc.beta2), fused=device.type == "cuda")


def setup(cfg: RunConfig, out: Path, device: torch.device, ddp: Distributed, tok_json: str | None) -> Run:
    """Corpus, tokenizer, objective, data sampler, model, EMA and optimizer of a fresh run."""
    tc = cfg.train
    corpus = load_corpus(cfg.data)
    tokenizer = _tokenizer(cfg, corpus, tok_json, ddp)
    if corpus.train_pairs is not None:  # seq2seq records, the source as a clean prefix (SPEC §11.7)
        train_ids, train_clean, val_ids, val_clean = _pair_streams(cfg, corpus, tokenizer, ddp)
    else:
        train_ids, val_ids = encode(tokenizer, corpus.train), encode(tokenizer, corpus.val)
        train_clean, val_clean = clean_masks(corpus, train_ids, val_ids)
    objective = make_objective(cfg)
    sampler = BlockSampler(train_ids, objective.example_len, tc.seed + 1000 * ddp.rank, cfg.data.record_len,
                           clean=train_clean)
    if val_ids.numel() < objective.example_len:
        raise ArdmError(f"validation split has {val_ids.numel()} tokens, fewer than one block of "
                        f"{objective.example_len}; use a longer corpus or a larger data.val_fraction")
    noise_gen = torch.Generator().manual_seed(tc.seed * 7919 + 17 + ddp.rank)
    torch.manual_seed(tc.seed + ddp.rank)
    model = build_model(cfg.model).to(device)
    ema = copy.deepcopy(model).eval() if tc.ema_decay > 0 else None
    return Run(cfg=cfg, out=out, device=device, ddp=ddp, corpus=corpus, tokenizer=tokenizer,
               objective=objective, sampler=sampler, val_ids=val_ids, val_clean=val_clean,
               noise_gen=noise_gen, model=model, ema=ema, opt=_optimizer(model, cfg, device))


def init_weights(path: str | os.PathLike, run: Run) -> dict[str, Any]:
    """Load a checkpoint's weights into a fresh run (--init-from); its config record for the metadata."""
    ckpt = read_checkpoint(path)
    mine, theirs = run.cfg.to_dict()["model"], ckpt.config.to_dict()["model"]
    for key in ("peer_heads", "peer_units", "dropout"):  # masks and dropout, not weights: a fine-tune
        theirs[key] = mine[key]  # may restrict heads or regularise differently
    old_layers = theirs["n_layer"]
    grown = mine["n_layer"] > old_layers  # a deeper fine-tune: function-preserving growth (grow_depth)
    if grown:
        theirs["n_layer"] = mine["n_layer"]
    diff = config_diff({"model": theirs}, {"model": mine})
    if diff:
        raise ArdmError(f"--init-from {path}: its model differs from this run's: {'; '.join(diff)}")
    if load_tokenizer(ckpt).to_json() != run.tokenizer.to_json():
        raise ArdmError(f"--init-from {path}: its tokenizer differs from the one built for this corpus")
    weights = grow_depth(read_weights(ckpt), old_layers, mine["n_layer"])
    for m in (run.model, run.ema):
        if m is not None:
            m.load_state_dict(weights)
    return {"path": str(ckpt.path), "model_sha256": ckpt.files[MODEL_FILE]["sha256"],
            "step": ckpt.meta.get("step"), "git_commit": ckpt.meta.get("git_commit"),
            **({"grown_from_layers": old_layers} if grown else {})}


def restore(run: Run, state: dict | None, init_from: str | os.PathLike | None) -> None:
    """Continue from a saved training state (exactly), or start from another checkpoint's weights."""
    run.init_meta = None if state is None else state.get("init_from")  # a resumed run keeps its origin
    tc = run.cfg.train
    if init_from is not None and state is None:
        if tc.init_from_ar:
            raise ArdmError("--init-from and --init-from-ar exclude each other: start from one checkpoint")
        run.init_meta = init_weights(init_from, run)
    if tc.init_from_ar and state is None:  # AR-to-diffusion adaptation, SPEC §11.5
        if run.cfg.model.causal:
            raise ArdmError("train.init_from_ar adapts a causal checkpoint into a diffusion denoiser; "
                            "this run's objective is causal")
        run.init_meta = load_ar_weights(tc.init_from_ar, run.cfg, run.tokenizer, run.model, run.ema)
    if state is not None:
        rank = run.ddp.rank
        run.model.load_state_dict(state["model"])
        run.opt.load_state_dict(state["optimizer"])
        if run.ema is not None:
            run.ema.load_state_dict(state["ema"])
        run.step, run.tokens_seen, run.elapsed = state["step"], state["tokens"], state["elapsed_s"]
        run.sampler.generator.set_state(state["rng"]["data"][rank])
        run.noise_gen.set_state(state["rng"]["noise"][rank])
        torch.set_rng_state(state["rng"]["torch"][rank])
    run.meta = {"recipe": run.cfg.recipe, "git_commit": git_commit(), "data_sha256": run.corpus.sha256,
                "data_source": run.corpus.source, "params": run.model.num_params(non_embedding=False),
                "params_non_embedding": run.model.num_params(), "world_size": run.ddp.world}
    if run.init_meta is not None:
        run.meta["init_from"] = run.init_meta


def save(run: Run, metrics: dict[str, Any]) -> None:
    """An atomic checkpoint of the run (EMA weights + full training state); rank 0 writes."""
    mine = [run.sampler.generator.get_state(), run.noise_gen.get_state(), torch.get_rng_state()]
    everyone = run.ddp.gather(mine)  # collective: every rank takes part
    if not run.ddp.main:
        return
    rng = {k: [r[i] for r in everyone] for i, k in enumerate(("data", "noise", "torch"))}
    training_state = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
                      "ema": run.ema.state_dict() if run.ema is not None else {}, "step": run.step,
                      "tokens": run.tokens_seen, "elapsed_s": run.elapsed, "rng": rng,
                      "init_from": run.init_meta}
    save_run_checkpoint(run.out, run.step, cfg=run.cfg, weights=run.eval_model.state_dict(),
                        tokenizer=run.tokenizer,
                        meta={**run.meta, "step": run.step, "tokens": run.tokens_seen,
                              "elapsed_s": round(run.elapsed, 2), "metrics": metrics},
                        training_state=training_state)
