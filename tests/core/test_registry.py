"""ardm.core.registry: registries refuse unknown names with the known ones, and the config's valid
values are exactly what the noise, schedule, objective, sampler and corpus registries hold."""

from __future__ import annotations

import pytest

from ardm.core.config import ModelConfig, NoiseConfig, RunConfig, ScheduleConfig, TrainConfig
from ardm.core.noise import NOISE_PROCESSES, make_noise
from ardm.core.objectives import OBJECTIVES, make_objective
from ardm.core.registry import Registry
from ardm.core.schedules import SCHEDULES, build
from ardm.data.sources import CORPUS_SOURCES, source_of
from ardm.errors import ArdmError
from ardm.generation.registry import SAMPLERS


def test_unknown_name_is_refused_listing_the_known_ones():
    reg: Registry[int] = Registry("widget", "widgets")
    reg.add("a", 1)
    reg.add("b", 2)
    assert reg["b"] == 2 and list(reg) == ["a", "b"] and "a" in reg and len(reg) == 2
    with pytest.raises(ArdmError, match=r"unknown widget 'c'; known widgets: a, b"):
        reg["c"]
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 3)


@pytest.mark.parametrize("kind", NOISE_PROCESSES.names())
def test_every_registered_noise_kind_is_a_valid_config_and_builds(kind):
    process = make_noise(NoiseConfig(kind=kind), vocab_size=7)
    assert isinstance(process, NOISE_PROCESSES[kind]) and process.mask_id == 7


@pytest.mark.parametrize("family", SCHEDULES.names())
def test_every_registered_schedule_family_builds_a_valid_hyperschedule(family):
    table = build(ScheduleConfig(family=family, steps=8), 6)
    assert table.shape[1] == 6 and bool((table[0] == 1).all()) and bool((table[-1] == 0).all())


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_registered_objective_is_valid(name):
    attention = name if name in ("causal", "armd") else "bidirectional"
    timing = "none" if name == "armd" else "per_token"  # armd reads block ids where t would go
    cfg = RunConfig(model=ModelConfig(vocab_size=5, attention=attention, time_conditioning=timing),
                    train=TrainConfig(objective=name))
    assert type(make_objective(cfg)) is OBJECTIVES[name]


def test_config_refuses_names_no_registry_holds():
    with pytest.raises(ArdmError, match="noise.kind must be one of"):
        NoiseConfig(kind="gaussian")
    with pytest.raises(ArdmError, match="schedule.family must be one of"):
        ScheduleConfig(family="zigzag")
    with pytest.raises(ArdmError, match="train.objective must be one of"):
        TrainConfig(objective="gan")


def test_samplers_and_corpus_sources_are_registries():
    with pytest.raises(ArdmError, match="known samplers: l2r"):
        SAMPLERS["nope"]
    assert {"hf", "sudoku", "sudoku-puzzles"} <= set(CORPUS_SOURCES)
    assert source_of("sudoku:100") == "sudoku" and source_of("../data/input.txt") is None
    assert source_of("C:/data/input.txt") is None  # a drive letter is a path, not a source
