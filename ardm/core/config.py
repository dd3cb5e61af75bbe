"""Typed run configuration: model, data, noise, training schedule and optimisation.

Every config is a dataclass validated at construction (`__post_init__`), serialised into the
checkpoint's `config.json`, and rebuilt strictly: an unknown key is an error, never ignored.
Named recipes (`ardm.training.recipes`) are plain functions returning a `RunConfig`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from ardm.core.noise import NOISE_PROCESSES
from ardm.core.objectives import OBJECTIVES
from ardm.core.schedules import SCHEDULES
from ardm.errors import ArdmError

# the valid names are the registries' (a new noise process, schedule or objective registers itself)
NOISE_KINDS = NOISE_PROCESSES.names()
SCHEDULE_FAMILIES = SCHEDULES.names()
OBJECTIVE_NAMES = OBJECTIVES.names()


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ArdmError(msg)


ATTENTIONS = ("bidirectional", "causal", "block_causal", "armd")
SUDOKU_LEN = 82  # a Sudoku record: "\n" then 81 cells, row-major


@dataclass
class ModelConfig:
    """Transformer denoiser (SPEC §1): pre-norm, RoPE, per-token time conditioning."""

    vocab_size: int = 0  # N, set from the tokenizer; MASK gets id N (input only)
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_len: int = 256  # longest sequence the model is trained for
    mlp_ratio: int = 4
    dropout: float = 0.0
    attention: str = "bidirectional"  # "bidirectional" (denoiser) | "causal" (AR) | "block_causal" | "armd"
    block_size: int = 0  # block_causal: tokens per block (BD3-LM, SPEC §11.6); must divide lengths
    time_conditioning: str = "per_token"  # "per_token" | "none" (time-agnostic, SPEC §1)
    abs_pos: bool = False  # add a learned absolute position embedding to RoPE (fixed layouts: Sudoku)
    shift: bool = False  # logits of position i read at hidden state i - 1 (AR-adapted denoisers, §11.5)
    peer_heads: int = 0  # Sudoku: this many heads per layer attend only to a cell's peers (its row,
    #                      column and box; records "\n" + 81 cells), the constraint graph (SPEC §8.1)
    peer_units: bool = False  # the peer heads see one unit each (row, column, box, all peers, cycling)
    # seq2seq encoder-decoder (AR-Diffusion's setting, SPEC §11.7): this many encoder layers read the
    # first encoder_len positions (source + SEP; RunConfig sets it from data.prefix_len); the
    # n_layer decoder layers attend to the target and cross-attend to the encoder's output
    encoder_layers: int = 0
    encoder_len: int = 0

    def __post_init__(self) -> None:
        _check(self.vocab_size >= 0, f"model.vocab_size must be >= 0, got {self.vocab_size}")
        _check(self.n_layer >= 1, f"model.n_layer must be >= 1, got {self.n_layer}")
        _check(self.n_head >= 1, f"model.n_head must be >= 1, got {self.n_head}")
        _check(self.d_model >= 8 and self.d_model % self.n_head == 0,
               f"model.d_model ({self.d_model}) must be >= 8 and divisible by n_head ({self.n_head})")
        _check((self.d_model // self.n_head) % 2 == 0,
               "model.d_model / n_head must be even (RoPE rotates pairs of dimensions)")
        _check(self.max_len >= 2, f"model.max_len must be >= 2, got {self.max_len}")
        _check(0.0 <= self.dropout < 1.0, f"model.dropout must be in [0, 1), got {self.dropout}")
        _check(self.attention in ATTENTIONS,
               f"model.attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.attention == "block_causal":
            _check(self.block_size >= 1 and self.max_len % self.block_size == 0,
                   f"model.block_size ({self.block_size}) must be >= 1 and divide model.max_len "
                   f"({self.max_len}) for a block_causal model")
            _check(not self.shift, "model.shift (AR-adapted logits) does not combine with block_causal")
        else:
            _check(self.attention != "armd" or (self.time_conditioning == "none" and not self.shift),
                   "model.attention='armd' reads each position's block id where the time would go: "
                   "it needs model.time_conditioning='none' and no model.shift")
            _check(self.block_size == 0, f"model.block_size ({self.block_size}) is for "
                   f"model.attention='block_causal' only (this model is {self.attention!r})")
        _check(not self.peer_units or self.peer_heads > 0, "model.peer_units needs model.peer_heads > 0")
        _check(0 <= self.peer_heads <= self.n_head,
               f"model.peer_heads must be in 0..n_head ({self.n_head}), got {self.peer_heads}")
        _check(not self.peer_heads or (self.attention == "bidirectional" and self.max_len == SUDOKU_LEN),
               f"model.peer_heads is for bidirectional Sudoku denoisers (max_len {SUDOKU_LEN}: a newline "
               f"and 81 cells); this one is {self.attention} with max_len {self.max_len}")
        _check(self.time_conditioning in ("per_token", "none"),
               f"model.time_conditioning must be 'per_token' or 'none', got {self.time_conditioning!r}")
        _check(self.encoder_layers >= 0, f"model.encoder_layers must be >= 0, got {self.encoder_layers}")
        _check(not self.encoder_layers or (self.attention == "bidirectional" and not self.shift
                                           and not self.peer_heads),
               "model.encoder_layers (an encoder-decoder denoiser) needs model.attention='bidirectional', "
               "no model.shift and no model.peer_heads")
        _check(0 <= self.encoder_len < self.max_len,
               f"model.encoder_len must be in 0..max_len - 1 ({self.max_len - 1}), got {self.encoder_len}")

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def causal(self) -> bool:
        """A causal AR model (reference, scorer) rather than a bidirectional denoiser."""
        return self.attention == "causal"


MODEL_PRESETS: dict[str, dict[str, int]] = {
    # name: (layers, heads, width). Parameter counts exclude embeddings.
    "tiny": dict(n_layer=2, n_head=2, d_model=64),  # tests and the bundled demo
    "small": dict(n_layer=4, n_head=4, d_model=128),  # ~0.8M
    "base": dict(n_layer=6, n_head=6, d_model=192),  # ~2.7M
    "medium": dict(n_layer=6, n_head=8, d_model=256),  # ~4.7M
    "large": dict(n_layer=8, n_head=8, d_model=384),  # ~14M, for a GPU
}


@dataclass
class DataConfig:
    """Where text comes from and how it becomes fixed-length blocks (see ardm/data.py)."""

    path: str = ""
    tokenizer: str = "char"  # "char" | "bpe"
    bpe_vocab_size: int = 8192
    seq_len: int = 256
    val_fraction: float = 0.1  # last fraction of the text (by characters) is validation
    text_field: str = "text"  # for .jsonl and Hugging Face datasets
    record_len: int = 0  # > 0: windows start at multiples of it (fixed-length records, e.g. Sudoku)
    clean_min: int = 0  # per diffusion example, U{clean_min..clean_max} random positions stay clean:
    clean_max: int = 0  # level 0, no loss (conditioning, e.g. Sudoku givens; SPEC §8.1)
    # seq2seq (SPEC §11.7): > 0 makes data.path a parallel corpus (ardm.data.parallel); each record is
    # source_len source tokens (left-padded), SEP, then target_len target tokens (EOS-filled)
    source_len: int = 0
    target_len: int = 0
    pair: str = ""  # "SRC,TGT": file suffixes in a folder (e.g. "en.gz,de.gz") or .jsonl field names

    def __post_init__(self) -> None:
        _check(self.tokenizer in ("char", "bpe"),
               f"data.tokenizer must be 'char' or 'bpe', got {self.tokenizer!r}")
        _check(self.bpe_vocab_size >= 2, f"data.bpe_vocab_size must be >= 2, got {self.bpe_vocab_size}")
        _check(self.seq_len >= 2, f"data.seq_len must be >= 2, got {self.seq_len}")
        _check(0.0 < self.val_fraction < 1.0,
               f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        _check(self.record_len >= 0, f"data.record_len must be >= 0, got {self.record_len}")
        _check(0 <= self.clean_min <= self.clean_max < self.seq_len,
               f"data.clean_min/clean_max must satisfy 0 <= min <= max < seq_len ({self.seq_len}), "
               f"got {self.clean_min}, {self.clean_max}")
        if self.source_len or self.target_len:
            _check(self.source_len >= 1 and self.target_len >= 2,
                   f"data.source_len must be >= 1 and data.target_len >= 2 for a parallel corpus, "
                   f"got {self.source_len}, {self.target_len}")
            _check(self.record_len == self.prefix_len + self.target_len,
                   f"a parallel corpus needs data.record_len = source_len + 1 + target_len "
                   f"({self.prefix_len + self.target_len}), got {self.record_len}")
            _check(self.tokenizer == "bpe", "a parallel corpus needs data.tokenizer=bpe")

    @property
    def prefix_len(self) -> int:
        """Clean positions in front of a seq2seq target: the source and SEP (0: not seq2seq)."""
        return self.source_len + 1 if self.source_len else 0


@dataclass
class NoiseConfig:
    """Forward corruption and its loss weights (SPEC §2)."""

    kind: str = "epsilon_hybrid"
    epsilon: float = 0.1  # epsilon-hybrid: share of visible tokens resampled uniformly (SPEC §2.3)
    hybrid_lambda: float = 1.0  # epsilon-hybrid: weight of the visible-token loss terms
    gamma: float = 0.01  # gamma-hybrid: uniform share of the CTMC rate (SPEC §2.4, HDLM default)
    t_min: float = 1e-3  # smallest continuous noise level drawn in training (SPEC §2.1, t_eps)
    mask_weight: str = "1/t"  # absorbing: "1/t" (MDLM) | "count" (L/#masked per row, lower variance)

    def __post_init__(self) -> None:
        _check(self.kind in NOISE_KINDS, f"noise.kind must be one of {NOISE_KINDS}, got {self.kind!r}")
        _check(0.0 <= self.epsilon < 1.0, f"noise.epsilon must be in [0, 1), got {self.epsilon}")
        _check(self.hybrid_lambda >= 0.0, f"noise.hybrid_lambda must be >= 0, got {self.hybrid_lambda}")
        _check(0.0 < self.gamma < 1.0, f"noise.gamma must be in (0, 1), got {self.gamma}")
        _check(0.0 < self.t_min < 0.5, f"noise.t_min must be in (0, 0.5), got {self.t_min}")
        _check(self.mask_weight in ("1/t", "count"),
               f"noise.mask_weight must be '1/t' or 'count', got {self.mask_weight!r}")


@dataclass
class ScheduleConfig:
    """Which hyperschedule family training draws per-token noise levels from (SPEC §3)."""

    family: str = "flat"
    steps: int = 256  # K rows of the hyperschedule used to draw training levels
    ar_diffusion_td: int = 0  # AR-Diffusion T_d (0: same as the sequence length)
    block_width: int = 16  # block family: tokens per block
    window: int = 8  # sliding annealing: window width w
    levels: int = 8  # sliding annealing: integer levels L (>= window)

    def __post_init__(self) -> None:
        _check(self.family in SCHEDULE_FAMILIES,
               f"schedule.family must be one of {SCHEDULE_FAMILIES}, got {self.family!r}")
        _check(self.steps >= 1, f"schedule.steps must be >= 1, got {self.steps}")
        _check(self.ar_diffusion_td >= 0, "schedule.ar_diffusion_td must be >= 0")
        _check(self.block_width >= 1, "schedule.block_width must be >= 1")
        _check(self.window >= 1, "schedule.window must be >= 1")
        _check(self.levels >= self.window,
               f"schedule.levels ({self.levels}) must be >= schedule.window ({self.window})")


@dataclass
class TrainConfig:
    objective: str = "diffusion"  # "diffusion" (noise x schedule) | "causal" (AR reference) | "armd"
    batch_size: int = 32  # sequences per optimizer step per process (before accumulation)
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 200
    max_steps: int = 5000  # also the horizon of the cosine schedule when max_minutes = 0
    max_minutes: float = 0.0  # > 0: stop on wall time; the LR schedule then follows time
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0 disables EMA; checkpoints export EMA weights when enabled
    eval_interval: int = 250
    eval_batches: int = 8
    ckpt_interval: int = 500
    log_interval: int = 10
    seed: int = 1337
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    bf16: bool = False  # autocast to bfloat16 on CUDA devices (ignored on CPU: no fast path there)
    threads: int = 0  # torch intra-op threads (0: leave torch's default)
    init_from_ar: str = ""  # causal checkpoint the denoiser starts from (SPEC §11.5; new runs only)
    attn_anneal_steps: int = 0  # with init_from_ar: causal -> bidirectional attention over these steps
    armd_rho_ramp: float = 0.0  # armd: share of training over which rho ramps 0 -> 0.5 (SPEC §5.3); 0: fixed

    def __post_init__(self) -> None:
        _check(self.objective in OBJECTIVE_NAMES,
               f"train.objective must be one of {OBJECTIVE_NAMES}, got {self.objective!r}")
        for name in ("batch_size", "grad_accum", "eval_interval", "eval_batches",
                     "ckpt_interval", "log_interval"):
            _check(getattr(self, name) >= 1, f"train.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.max_steps >= 1, f"train.max_steps must be >= 1, got {self.max_steps}")
        _check(self.max_minutes >= 0, f"train.max_minutes must be >= 0, got {self.max_minutes}")
        _check(self.warmup_steps >= 0, f"train.warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(self.lr > 0 and 0 <= self.min_lr <= self.lr,
               f"train.lr must be > 0 and 0 <= min_lr <= lr (lr={self.lr}, min_lr={self.min_lr})")
        _check(0.0 <= self.ema_decay < 1.0, f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        _check(0.0 < self.beta2 < 1.0, f"train.beta2 must be in (0, 1), got {self.beta2}")
        _check(self.grad_clip >= 0, f"train.grad_clip must be >= 0, got {self.grad_clip}")
        _check(self.threads >= 0, f"train.threads must be >= 0, got {self.threads}")
        _check(self.attn_anneal_steps >= 0,
               f"train.attn_anneal_steps must be >= 0, got {self.attn_anneal_steps}")
        _check(0.0 <= self.armd_rho_ramp <= 1.0,
               f"train.armd_rho_ramp must be in [0, 1], got {self.armd_rho_ramp}")


@dataclass
class RunConfig:
    recipe: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        wants = {"causal": ("causal",), "armd": ("armd",)}.get(self.train.objective,
                                                                 ("bidirectional", "block_causal"))
        _check(self.model.attention in wants,
               f"train.objective={self.train.objective!r} needs model.attention in {wants} "
               f"(got {self.model.attention!r})")
        _check(self.data.seq_len <= self.model.max_len,
               f"data.seq_len ({self.data.seq_len}) exceeds model.max_len ({self.model.max_len})")
        bs = self.model.block_size
        _check(bs == 0 or self.data.seq_len % bs == 0,
               f"model.block_size ({bs}) must divide data.seq_len ({self.data.seq_len})")
        if self.model.encoder_layers:  # the encoder reads the source and SEP: derived, then checked
            _check(self.data.prefix_len > 0, "model.encoder_layers needs a parallel corpus "
                   "(data.source_len > 0): the encoder reads the source")
            self.model.encoder_len = self.model.encoder_len or self.data.prefix_len
            _check(self.model.encoder_len == self.data.prefix_len,
                   f"model.encoder_len ({self.model.encoder_len}) must equal data.source_len + 1 "
                   f"({self.data.prefix_len})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return _build(cls, d, "")


def _build(cls: type, d: Any, prefix: str) -> Any:
    """Rebuild a (nested) dataclass from a dict, refusing unknown keys and wrong types."""
    if not isinstance(d, dict):
        raise ArdmError(f"config section '{prefix or 'root'}' must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        where = f" in section '{prefix.rstrip('.')}'" if prefix else ""
        raise ArdmError(f"unknown config key(s){where}: {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in d.items():
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ArdmError(f"config key {key} must be a boolean, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ArdmError(f"config key {key} must be a number, got {value!r}")
        try:
            out = hint(value) if hint is float else int(str(value), 0) if isinstance(value, str) else value
        except (TypeError, ValueError):
            raise ArdmError(f"config key {key} must be {hint.__name__}, got {value!r}") from None
        if hint is int and (not isinstance(out, int) or (isinstance(value, float) and value != int(value))):
            raise ArdmError(f"config key {key} must be an integer, got {value!r}")
        return out
    if hint is str:
        if not isinstance(value, str):
            raise ArdmError(f"config key {key} must be a string, got {value!r}")
        return value
    return value


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `section.key=value` overrides (the CLI's --set) and re-validate everything."""
    d = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ArdmError(f"--set expects section.key=value, got {item!r}")
        path, value = item.split("=", 1)
        parts = path.strip().split(".")
        node = d
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ArdmError(f"unknown config section {p!r} in --set {item!r} "
                                f"(sections: model, data, noise, schedule, train)")
            node = node[p]
        if parts[-1] not in node or isinstance(node[parts[-1]], dict):
            raise ArdmError(f"unknown config key {path!r} in --set {item!r}")
        node[parts[-1]] = value
    return RunConfig.from_dict(d)


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys (dotted) whose values differ between two config dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return out
