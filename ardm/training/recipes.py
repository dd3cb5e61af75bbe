"""Named training recipes: plain functions returning a RunConfig (STYLE: presets as functions).

Sizes are chosen for the 2-core CPUs this project develops on (many small optimizer steps, fp32)
unless a recipe says it is for a GPU. Data paths are relative to the repository root, where
`../shared/data` sits beside the checkout; override with --data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib import resources

from ardm.core.config import (
    MODEL_PRESETS,
    DataConfig,
    ModelConfig,
    NoiseConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)
from ardm.errors import ArdmError

SHAKESPEARE = "../shared/data/tinyshakespeare/input.txt"
WIKITEXT2 = "../shared/data/wikitext-2"
MULTI30K = "../shared/data/multi30k"
COMMONGEN = "../shared/data/commongen"


def bundled_corpus() -> str:
    """Path of the small public-domain corpus shipped inside the package."""
    return str(resources.files("ardm") / "data" / "public_domain.txt")


def _model(preset: str, causal: bool, max_len: int) -> ModelConfig:
    return ModelConfig(**MODEL_PRESETS[preset], max_len=max_len,
                       attention="causal" if causal else "bidirectional",
                       time_conditioning="none" if causal else "per_token")


def _diffusion(recipe: str, preset: str, data: DataConfig, train: TrainConfig) -> RunConfig:
    """An epsilon-hybrid denoiser (SPEC §2.3) on the flat schedule: every recipe's default."""
    return RunConfig(recipe=recipe, model=_model(preset, causal=False, max_len=data.seq_len),
                     data=data, noise=NoiseConfig(kind="epsilon_hybrid", epsilon=0.1),
                     schedule=ScheduleConfig(family="flat"), train=train)


def _ar_twin(cfg: RunConfig, recipe: str) -> RunConfig:
    """The causal AR reference for a diffusion recipe: same size, data and optimisation."""
    cfg.recipe = recipe
    # causal windows are seq_len + 1 tokens, of which the model reads the first seq_len
    cfg.model = dataclasses.replace(cfg.model, attention="causal", time_conditioning="none",
                                    max_len=cfg.data.seq_len)
    cfg.train.objective = "causal"
    return cfg


def shakespeare_char() -> RunConfig:
    """Tiny Shakespeare, characters; epsilon-hybrid diffusion denoiser (CPU, ~30 minutes)."""
    # 0.8M non-embedding parameters: about compute-optimal for 30 minutes of a 2-core CPU
    # (~65 GFLOP/s fp32 matmul peak measured here; ~6,500 tokens/s, ~12M tokens in 30 minutes).
    return _diffusion(
        "shakespeare-char", "small", DataConfig(path=SHAKESPEARE, tokenizer="char", seq_len=256),
        TrainConfig(objective="diffusion", batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=100,
                    max_steps=3000, eval_interval=250, ckpt_interval=250, ema_decay=0.995))


def shakespeare_char_ar() -> RunConfig:
    """Tiny Shakespeare, characters; the causal AR reference model (CPU, ~30 minutes)."""
    return _ar_twin(shakespeare_char(), "shakespeare-char-ar")


def shakespeare_char_from_ar() -> RunConfig:
    """Tiny Shakespeare, characters; a denoiser adapted from the bundled causal twin (SPEC §11.5).

    DiffuLLaMA-style: weights from checkpoints/shakespeare-char-ar (same shape), logits shifted so
    the AR head keeps predicting "the next token", attention annealed causal -> bidirectional,
    absorbing noise with the MDLM objective weighted L/#masked per row (noise.mask_weight=count, lower
    variance), no time input (an absorbing denoiser needs none). Peak lr 3e-3 as from scratch: in
    4-minute screens it beat 1e-3 (docs/results-denoiser.md)."""
    cfg = shakespeare_char()
    cfg.recipe = "shakespeare-char-from-ar"
    cfg.noise = NoiseConfig(kind="absorbing", mask_weight="count")
    cfg.model.time_conditioning, cfg.model.shift = "none", True
    cfg.train.init_from_ar = "checkpoints/shakespeare-char-ar"
    cfg.train.attn_anneal_steps = 300
    return cfg


def shakespeare_char_block() -> RunConfig:
    """Tiny Shakespeare, characters; a block-causal denoiser (BD3-LM reading, SPEC §11.6): blocks of
    16 characters, bidirectional inside a block, causal across blocks, trained on the two-copy input
    (one pass trains every block; twice the tokens per step). Sampled block by block, where the exact
    KV cache computes each settled block once (docs/speed.md)."""
    cfg = shakespeare_char()
    cfg.recipe = "shakespeare-char-block"
    cfg.model.attention, cfg.model.block_size = "block_causal", 16
    return cfg


def shakespeare_char_armd() -> RunConfig:
    """Tiny Shakespeare, characters; ARMD (SPEC §5.3): the two-stream, strictly causal model trained
    on one-pass likelihoods of identity, random and strided orders (twice the tokens per step)."""
    cfg = shakespeare_char()
    cfg.recipe = "shakespeare-char-armd"
    cfg.model.attention, cfg.model.time_conditioning = "armd", "none"
    cfg.train.objective = "armd"
    return cfg


def shakespeare_char_oa() -> RunConfig:
    """Tiny Shakespeare, characters; order-agnostic ARDM (Hoogeboom et al.; exact-count masking)."""
    cfg = shakespeare_char()
    cfg.recipe = "shakespeare-char-oa"
    cfg.noise = NoiseConfig(kind="order_agnostic")
    cfg.model.time_conditioning = "none"  # the mask pattern tells the model how much is known
    return cfg


def wikitext2_char_oa() -> RunConfig:
    """WikiText-2 (the tokenized release), characters; order-agnostic ARDM (CPU, ~75 minutes).
    Its test split is text the model never saw: the compression benchmark's second corpus."""
    cfg = shakespeare_char_oa()
    cfg.recipe = "wikitext2-char-oa"
    cfg.data = DataConfig(path=WIKITEXT2, tokenizer="char", seq_len=256)
    cfg.train.max_steps = 100000  # --max-minutes decides; the cosine follows wall time
    return cfg


def wikitext2_bpe() -> RunConfig:
    """WikiText-2 with an 8k byte-level BPE; epsilon-hybrid diffusion (sized for a GPU)."""
    return _diffusion(
        "wikitext2-bpe", "large",
        DataConfig(path=WIKITEXT2, tokenizer="bpe", bpe_vocab_size=8192, seq_len=256),
        TrainConfig(objective="diffusion", batch_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=500,
                    max_steps=20000, eval_interval=1000, ckpt_interval=1000, bf16=True))


def wikitext2_bpe_ar() -> RunConfig:
    """WikiText-2 with an 8k byte-level BPE; the causal AR reference (sized for a GPU)."""
    return _ar_twin(wikitext2_bpe(), "wikitext2-bpe-ar")


def demo_char() -> RunConfig:
    """The bundled public-domain corpus, a tiny denoiser: exercises everything in about a minute."""
    return _diffusion(
        "demo-char", "tiny", DataConfig(path=bundled_corpus(), tokenizer="char", seq_len=64),
        TrainConfig(objective="diffusion", batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=50,
                    max_steps=400, eval_interval=100, ckpt_interval=200, eval_batches=2))


def demo_char_ar() -> RunConfig:
    """The causal twin of demo-char."""
    return _ar_twin(demo_char(), "demo-char-ar")


def sudoku() -> RunConfig:
    """Solved Sudoku grids (synthetic, `sudoku:N`), givens as clean positions; CPU, ~45 minutes.

    Each example keeps U{17..60} random cells clean (the givens, level 0, no loss), so training
    covers hard (17-25 givens) to easy (36-45) puzzles; epsilon-hybrid noise teaches the denoiser to
    doubt visible digits, which is what overwriting needs (SPEC §2.6)."""
    data = DataConfig(path="sudoku:100000", tokenizer="char", seq_len=82, record_len=82,
                      clean_min=17, clean_max=60, val_fraction=0.02)
    cfg = _diffusion("sudoku", "small", data,
                     TrainConfig(objective="diffusion", batch_size=32, lr=2e-3, min_lr=2e-4, warmup_steps=200,
                                 max_steps=20000, eval_interval=500, ckpt_interval=500, ema_decay=0.999))
    cfg.model.n_layer = 6  # constraint propagation wants depth more than width
    cfg.model.abs_pos = True  # rows, columns and boxes are absolute positions, not offsets
    return cfg


def sudoku_large() -> RunConfig:
    """The Sudoku recipe sized for a GPU: a wider, deeper denoiser, larger batches."""
    cfg = sudoku()
    cfg.recipe = "sudoku-large"
    cfg.data.path = "sudoku:1000000"
    cfg.model = _model("large", causal=False, max_len=82)
    cfg.train.batch_size, cfg.train.lr, cfg.train.max_steps, cfg.train.bf16 = 256, 1e-3, 50000, True
    return cfg


def sudoku_ar() -> RunConfig:
    """The row-major AR twin of `sudoku`: a causal model over "\n" + 81 cells. At solving time given
    cells are written as they come (it cannot see givens to its right: the AR handicap)."""
    cfg = _ar_twin(sudoku(), "sudoku-ar")
    cfg.data.seq_len, cfg.data.clean_min, cfg.data.clean_max = 81, 0, 0  # windows of 82 = one record
    return cfg


def _seq2seq(recipe: str, path: str, pair: str, source_len: int, target_len: int, vocab: int) -> RunConfig:
    """A prefix denoiser (SPEC §11.7): source clean in front, AR-Diffusion's per-token schedule on the
    target only, epsilon-hybrid noise so overwriting samplers have something to work with; 4 x 128,
    sized for 20 minutes of one CPU thread (~3,500 tokens/s there)."""
    L = source_len + 1 + target_len
    data = DataConfig(path=path, tokenizer="bpe", bpe_vocab_size=vocab, seq_len=L, record_len=L,
                      source_len=source_len, target_len=target_len, pair=pair)
    train = TrainConfig(objective="diffusion", batch_size=32, lr=2e-3, min_lr=2e-4, warmup_steps=200,
                        max_steps=1_000_000, max_minutes=20, threads=1, eval_interval=250, eval_batches=8,
                        ckpt_interval=500, ema_decay=0.999)
    return RunConfig(recipe=recipe, model=ModelConfig(n_layer=4, n_head=4, d_model=128, max_len=L), data=data,
                     noise=NoiseConfig(kind="epsilon_hybrid", epsilon=0.1),
                     schedule=ScheduleConfig(family="ar_diffusion"), train=train)


def _seq2seq_ar(cfg: RunConfig, recipe: str) -> RunConfig:
    """The causal prefix LM twin: the same records, size and CPU time; loss on the target only."""
    cfg = _ar_twin(cfg, recipe)
    L = cfg.data.record_len
    cfg.data.seq_len = L - 1  # causal examples are seq_len + 1 = one record
    cfg.model.max_len = L
    return cfg


def multi30k_en_de() -> RunConfig:
    """Multi30k En->De (29k pairs), shared 6k BPE; 32 source + 36 target tokens (>= 99% fit)."""
    return _seq2seq("multi30k-en-de", MULTI30K, "en.gz,de.gz", 32, 36, 6000)


def multi30k_en_de_ar() -> RunConfig:
    """The causal prefix-LM twin of multi30k-en-de (greedy / beam search)."""
    return _seq2seq_ar(multi30k_en_de(), "multi30k-en-de-ar")


def multi30k_en_de_encdec() -> RunConfig:
    """multi30k-en-de as an encoder-decoder (AR-Diffusion's setting): 3 encoder + 3 decoder layers x 128,
    about the prefix denoiser's FLOPs per training pair; the source is encoded once per decode."""
    cfg = multi30k_en_de()
    cfg.recipe = "multi30k-en-de-encdec"
    cfg.model.n_layer, cfg.model.encoder_layers, cfg.model.encoder_len = 3, 3, cfg.data.prefix_len
    return cfg


def commongen() -> RunConfig:
    """CommonGen concept set -> sentence (39k pairs), shared 5k BPE; 12 source + 32 target tokens."""
    return _seq2seq("commongen", COMMONGEN, "src_alpha.txt,tgt.txt", 12, 32, 5000)


def commongen_ar() -> RunConfig:
    """The causal prefix-LM twin of commongen."""
    return _seq2seq_ar(commongen(), "commongen-ar")


RECIPES: dict[str, Callable[[], RunConfig]] = {
    "shakespeare-char": shakespeare_char,
    "shakespeare-char-ar": shakespeare_char_ar,
    "shakespeare-char-from-ar": shakespeare_char_from_ar,
    "shakespeare-char-oa": shakespeare_char_oa,
    "shakespeare-char-block": shakespeare_char_block,
    "shakespeare-char-armd": shakespeare_char_armd,
    "wikitext2-char-oa": wikitext2_char_oa,
    "wikitext2-bpe": wikitext2_bpe,
    "wikitext2-bpe-ar": wikitext2_bpe_ar,
    "demo-char": demo_char,
    "demo-char-ar": demo_char_ar,
    "sudoku": sudoku,
    "sudoku-large": sudoku_large,
    "sudoku-ar": sudoku_ar,
    "multi30k-en-de": multi30k_en_de,
    "multi30k-en-de-ar": multi30k_en_de_ar,
    "multi30k-en-de-encdec": multi30k_en_de_encdec,
    "commongen": commongen,
    "commongen-ar": commongen_ar,
}


def get_recipe(name: str) -> RunConfig:
    if name not in RECIPES:
        raise ArdmError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]()
