"""Named training recipes: plain functions returning a RunConfig (STYLE: presets as functions).

Sizes are chosen for the 2-core CPUs this project develops on (many small optimizer steps, fp32)
unless a recipe says it is for a GPU. Data paths are relative to the repository root, where
`../shared/data` sits beside the checkout; override with --data.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from .config import (
    MODEL_PRESETS,
    DataConfig,
    ModelConfig,
    NoiseConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)
from .errors import ArdmError

SHAKESPEARE = "../shared/data/tinyshakespeare/input.txt"
WIKITEXT2 = "../shared/data/wikitext-2"


def bundled_corpus() -> str:
    """Path of the small public-domain corpus shipped inside the package."""
    return str(resources.files("ardm") / "data" / "public_domain.txt")


def _model(preset: str, causal: bool, max_len: int, time_conditioning: str = "per_token") -> ModelConfig:
    return ModelConfig(**MODEL_PRESETS[preset], max_len=max_len,
                       attention="causal" if causal else "bidirectional",
                       time_conditioning="none" if causal else time_conditioning)


def shakespeare_char() -> RunConfig:
    """Tiny Shakespeare, characters; epsilon-hybrid diffusion denoiser (CPU, ~30 minutes)."""
    return RunConfig(
        recipe="shakespeare-char",
        # 0.8M non-embedding parameters: about compute-optimal for 30 minutes of a 2-core CPU
        # (~65 GFLOP/s fp32 matmul peak measured here; ~6,500 tokens/s, ~12M tokens in 30 minutes).
        model=_model("small", causal=False, max_len=256),
        data=DataConfig(path=SHAKESPEARE, tokenizer="char", seq_len=256),
        noise=NoiseConfig(kind="epsilon_hybrid", epsilon=0.1),
        schedule=ScheduleConfig(family="flat"),
        train=TrainConfig(objective="diffusion", batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=100,
                          max_steps=3000, eval_interval=250, ckpt_interval=250, ema_decay=0.995),
    )


def shakespeare_char_ar() -> RunConfig:
    """Tiny Shakespeare, characters; the causal AR reference model (CPU, ~30 minutes)."""
    cfg = shakespeare_char()
    cfg.recipe = "shakespeare-char-ar"
    cfg.model = _model("small", causal=True, max_len=256)
    cfg.train.objective = "causal"
    return cfg


def wikitext2_bpe() -> RunConfig:
    """WikiText-2 with an 8k byte-level BPE; epsilon-hybrid diffusion (sized for a GPU)."""
    return RunConfig(
        recipe="wikitext2-bpe",
        model=_model("large", causal=False, max_len=256),
        data=DataConfig(path=WIKITEXT2, tokenizer="bpe", bpe_vocab_size=8192, seq_len=256),
        noise=NoiseConfig(kind="epsilon_hybrid", epsilon=0.1),
        schedule=ScheduleConfig(family="flat"),
        train=TrainConfig(objective="diffusion", batch_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=500,
                          max_steps=20000, eval_interval=1000, ckpt_interval=1000, bf16=True),
    )


def wikitext2_bpe_ar() -> RunConfig:
    """WikiText-2 with an 8k byte-level BPE; the causal AR reference (sized for a GPU)."""
    cfg = wikitext2_bpe()
    cfg.recipe = "wikitext2-bpe-ar"
    cfg.model = _model("large", causal=True, max_len=256)
    cfg.train.objective = "causal"
    return cfg


def demo_char() -> RunConfig:
    """The bundled public-domain corpus, a tiny denoiser: exercises everything in about a minute."""
    return RunConfig(
        recipe="demo-char",
        model=_model("tiny", causal=False, max_len=64),
        data=DataConfig(path=bundled_corpus(), tokenizer="char", seq_len=64),
        noise=NoiseConfig(kind="epsilon_hybrid", epsilon=0.1),
        schedule=ScheduleConfig(family="flat"),
        train=TrainConfig(objective="diffusion", batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=50,
                          max_steps=400, eval_interval=100, ckpt_interval=200, eval_batches=2),
    )


def demo_char_ar() -> RunConfig:
    """The causal twin of demo-char."""
    cfg = demo_char()
    cfg.recipe = "demo-char-ar"
    cfg.model = _model("tiny", causal=True, max_len=65)
    cfg.train.objective = "causal"
    return cfg


RECIPES: dict[str, Callable[[], RunConfig]] = {
    "shakespeare-char": shakespeare_char,
    "shakespeare-char-ar": shakespeare_char_ar,
    "wikitext2-bpe": wikitext2_bpe,
    "wikitext2-bpe-ar": wikitext2_bpe_ar,
    "demo-char": demo_char,
    "demo-char-ar": demo_char_ar,
}


def get_recipe(name: str) -> RunConfig:
    if name not in RECIPES:
        raise ArdmError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]()
