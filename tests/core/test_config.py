"""ardm.core.config: validation, strict (de)serialisation, --set overrides and config diffs."""

from __future__ import annotations

import dataclasses

import pytest

from ardm.core.config import (
    DataConfig,
    ModelConfig,
    NoiseConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
    config_diff,
)
from ardm.errors import ArdmError


def test_defaults_validate_and_are_consistent():
    """Every section's defaults construct, and the default RunConfig passes cross-checks."""
    cfg = RunConfig()
    assert cfg.model.attention == "bidirectional" and cfg.train.objective == "diffusion"
    assert cfg.data.seq_len <= cfg.model.max_len
    assert cfg.model.mask_id == cfg.model.vocab_size
    for section in (ModelConfig, DataConfig, NoiseConfig, ScheduleConfig, TrainConfig):
        default = section()  # the defaults pass their own validation and survive a dict round trip
        assert section(**dataclasses.asdict(default)) == default


@pytest.mark.parametrize("make, key", [
    (lambda: TrainConfig(max_steps=-5), "train.max_steps"),
    (lambda: TrainConfig(warmup_steps=-1), "train.warmup_steps"),
    (lambda: TrainConfig(batch_size=0), "train.batch_size"),
    (lambda: TrainConfig(grad_accum=-2), "train.grad_accum"),
    (lambda: TrainConfig(objective="mle"), "train.objective"),
    (lambda: TrainConfig(ema_decay=1.0), "train.ema_decay"),
    (lambda: TrainConfig(lr=0.0), "train.lr"),
    (lambda: ScheduleConfig(steps=0), "schedule.steps"),
    (lambda: ScheduleConfig(steps=-3), "schedule.steps"),
    (lambda: ScheduleConfig(family="cosine"), "schedule.family"),
    (lambda: ScheduleConfig(block_width=0), "schedule.block_width"),
    (lambda: ScheduleConfig(window=8, levels=4), "schedule.levels"),
    (lambda: ModelConfig(n_layer=0), "model.n_layer"),
    (lambda: ModelConfig(d_model=-32), "model.d_model"),
    (lambda: ModelConfig(max_len=0), "model.max_len"),
    (lambda: ModelConfig(vocab_size=-1), "model.vocab_size"),
    (lambda: ModelConfig(attention="sparse"), "model.attention"),
    (lambda: ModelConfig(time_conditioning="global"), "model.time_conditioning"),
    (lambda: ModelConfig(d_model=30, n_head=4), "model.d_model"),
    (lambda: DataConfig(seq_len=0), "data.seq_len"),
    (lambda: DataConfig(tokenizer="word"), "data.tokenizer"),
    (lambda: DataConfig(val_fraction=0.0), "data.val_fraction"),
    (lambda: DataConfig(val_fraction=1.5), "data.val_fraction"),
    (lambda: NoiseConfig(kind="gaussian"), "noise.kind"),
    (lambda: NoiseConfig(epsilon=-0.1), "noise.epsilon"),
    (lambda: NoiseConfig(t_min=0.0), "noise.t_min"),
])
def test_out_of_range_values_raise_naming_the_key(make, key):
    """Each invalid value raises ArdmError whose message names the offending dotted key."""
    with pytest.raises(ArdmError, match=key.replace(".", r"\.")):
        make()


def test_d_model_not_divisible_by_n_head_is_rejected():
    """d_model must split evenly over heads; the message mentions both quantities."""
    with pytest.raises(ArdmError) as e:
        ModelConfig(d_model=48, n_head=5)
    assert "d_model" in str(e.value) and "n_head" in str(e.value)


def test_seq_len_longer_than_max_len_is_rejected():
    """A training block longer than the model's positional range is a config error."""
    with pytest.raises(ArdmError, match=r"data\.seq_len.*model\.max_len"):
        RunConfig(model=ModelConfig(max_len=64), data=DataConfig(seq_len=128))
    RunConfig(model=ModelConfig(max_len=64), data=DataConfig(seq_len=64))  # equal is fine


def test_objective_and_attention_must_agree():
    """causal objective needs causal attention and the diffusion objective bidirectional."""
    with pytest.raises(ArdmError, match="train.objective"):
        RunConfig(train=TrainConfig(objective="causal"))  # default attention is bidirectional
    with pytest.raises(ArdmError, match="attention"):
        RunConfig(model=ModelConfig(attention="causal"))  # default objective is diffusion
    cfg = RunConfig(model=ModelConfig(attention="causal"), train=TrainConfig(objective="causal"))
    assert cfg.train.objective == "causal"


def _nondefault() -> RunConfig:
    return RunConfig(
        recipe="unit",
        model=ModelConfig(vocab_size=77, n_layer=3, n_head=2, d_model=48, max_len=40,
                          dropout=0.1, time_conditioning="none"),
        data=DataConfig(path="some/file.txt", tokenizer="bpe", bpe_vocab_size=500, seq_len=32,
                        val_fraction=0.25, text_field="body"),
        noise=NoiseConfig(kind="uniform", epsilon=0.2, hybrid_lambda=0.5, t_min=0.01),
        schedule=ScheduleConfig(family="sliding", steps=9, window=3, levels=5),
        train=TrainConfig(lr=3e-4, min_lr=1e-5, max_minutes=2.5, bf16=True, seed=7),
    )


def test_to_dict_from_dict_round_trip():
    """from_dict(to_dict(cfg)) reproduces cfg exactly, including nested sections."""
    for cfg in (RunConfig(), _nondefault()):
        d = cfg.to_dict()
        again = RunConfig.from_dict(d)
        assert again == cfg
        assert again.to_dict() == d
        assert isinstance(again.model, ModelConfig) and isinstance(again.train.bf16, bool)


def test_unknown_top_level_key_is_rejected_by_name():
    """An unknown top-level key raises ArdmError naming it (never silently ignored)."""
    d = RunConfig().to_dict()
    d["optimizer"] = {}
    with pytest.raises(ArdmError, match="optimizer"):
        RunConfig.from_dict(d)


def test_unknown_nested_key_is_rejected_by_name_and_section():
    """An unknown key inside a section raises ArdmError naming the key and its section."""
    d = RunConfig().to_dict()
    d["model"]["n_heads"] = 4
    with pytest.raises(ArdmError) as e:
        RunConfig.from_dict(d)
    assert "n_heads" in str(e.value) and "model" in str(e.value)


def test_from_dict_rejects_wrong_types():
    """A section that is not a mapping, or a value of the wrong type, is an ArdmError."""
    d = RunConfig().to_dict()
    d["noise"] = "absorbing"
    with pytest.raises(ArdmError, match="noise"):
        RunConfig.from_dict(d)
    d = RunConfig().to_dict()
    d["model"]["n_layer"] = 2.5
    with pytest.raises(ArdmError, match="model.n_layer"):
        RunConfig.from_dict(d)
    d = RunConfig().to_dict()
    d["data"]["tokenizer"] = 3
    with pytest.raises(ArdmError, match="data.tokenizer"):
        RunConfig.from_dict(d)


def test_from_dict_partial_sections_use_defaults():
    """Missing keys take their defaults, so an old/partial config still loads."""
    cfg = RunConfig.from_dict({"model": {"d_model": 64}})
    assert cfg.model.d_model == 64 and cfg.model.n_layer == ModelConfig().n_layer
    assert cfg.train == TrainConfig()


def test_apply_overrides_coerces_types():
    """--set values arrive as strings and are coerced to the field's type."""
    cfg = apply_overrides(RunConfig(), [
        "model.d_model=64", "train.lr=3e-4", "train.bf16=true", "noise.kind=absorbing",
        "schedule.steps=0x10", "recipe=mine",
    ])
    assert cfg.model.d_model == 64 and type(cfg.model.d_model) is int
    assert cfg.train.lr == pytest.approx(3e-4) and type(cfg.train.lr) is float
    assert cfg.train.bf16 is True
    assert cfg.noise.kind == "absorbing"
    assert cfg.schedule.steps == 16
    assert cfg.recipe == "mine"
    for text, value in [("True", True), ("1", True), ("yes", True),
                        ("false", False), ("0", False), ("NO", False)]:
        assert apply_overrides(RunConfig(), [f"train.bf16={text}"]).train.bf16 is value


def test_apply_overrides_does_not_mutate_input():
    """Overrides return a new config; the original is unchanged."""
    base = RunConfig()
    apply_overrides(base, ["model.d_model=64"])
    assert base.model.d_model == ModelConfig().d_model


@pytest.mark.parametrize("item, needle", [
    ("model.dmodel=64", "model.dmodel"),
    ("optim.lr=1", "optim"),
    ("train=3", "train"),
    ("model.d_model", "section.key=value"),
    ("=5", "=5"),
    ("model.d_model=abc", "model.d_model"),
    ("model.d_model=6.5", "model.d_model"),
    ("train.bf16=maybe", "train.bf16"),
    ("train.lr=fast", "train.lr"),
])
def test_apply_overrides_rejects_unknown_and_malformed(item, needle):
    """Unknown keys/sections and values that do not parse raise ArdmError naming them."""
    with pytest.raises(ArdmError) as e:
        apply_overrides(RunConfig(), [item])
    assert needle in str(e.value)


def test_apply_overrides_revalidates():
    """An override that makes the config invalid is caught by validation."""
    with pytest.raises(ArdmError, match="model.n_layer"):
        apply_overrides(RunConfig(), ["model.n_layer=0"])
    with pytest.raises(ArdmError, match=r"data\.seq_len"):
        apply_overrides(RunConfig(), ["data.seq_len=100000"])


def test_config_diff_lists_differing_dotted_keys():
    """config_diff reports exactly the dotted keys whose values differ, old -> new."""
    a = RunConfig().to_dict()
    b = apply_overrides(RunConfig(), ["model.d_model=64", "train.seed=3", "recipe=x"]).to_dict()
    diff = config_diff(a, b)
    keys = sorted(line.split(":")[0] for line in diff)
    assert keys == ["model.d_model", "recipe", "train.seed"]
    line = next(x for x in diff if x.startswith("model.d_model:"))
    assert "128" in line and "64" in line
    assert config_diff(a, a) == []
    assert config_diff({"x": {"y": 1}}, {"x": {}}) == ["x.y: 1 -> None"]
