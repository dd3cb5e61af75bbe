"""ardm.tasks.seq2seq.decoding: every sampler decodes from a clean source through the one loop,
MBR multiplies NFE by k, results do not depend on the batch size; `ardm translate` end to end."""

from __future__ import annotations

import json
import re

import pytest

from ardm.cli import main
from ardm.core.checkpoint import load
from ardm.errors import ArdmError
from ardm.generation.registry import make_sampler
from ardm.generation.specs import SamplerSpec
from ardm.tasks.seq2seq.decoding import build_sampler, decode, translate

SOURCES = ["cat runs", "a big dog", "red fish sleeps", "bird"]


@pytest.mark.parametrize("spec", ["fixed", "mdlm", "llada", "remdm", "edit", "gate"])
def test_every_sampler_decodes_one_line_per_source(seq2seq_models, spec):
    _, den, _ = seq2seq_models
    loaded = load(den)
    sampler = build_sampler(loaded, SamplerSpec.parse(spec), 5, SOURCES)
    out = translate(loaded, SOURCES, sampler, 5, mbr=3, seed=1)
    assert len(out["targets"]) == 4 and all(isinstance(t, str) for t in out["targets"])
    assert all(3 <= n <= 3 * 6 for n in out["nfe"])  # NFE x k, each run <= K + the final fill pass


def test_candidates_do_not_depend_on_the_batch_size_and_mbr_is_nested(seq2seq_models):
    _, den, _ = seq2seq_models
    loaded = load(den)
    a = decode(loaded, SOURCES, make_sampler("fixed"), 4, k=3, seed=5, batch_size=4)
    b = decode(loaded, SOURCES, make_sampler("fixed"), 4, k=3, seed=5, batch_size=3)
    assert a.candidates == b.candidates and a.nfe == b.nfe
    one, nfe1 = a.choose(1)
    assert one == [c[0] for c in a.candidates] and nfe1 == [n[0] for n in a.nfe]
    with pytest.raises(ArdmError, match="MBR k must be in 1..3"):
        a.choose(4)


@pytest.mark.parametrize("spec", ["llada", "edit", "gate"])
def test_confidence_ordered_samplers_draw_nothing_at_temperature_zero(seq2seq_models, spec):
    """Their k argmax candidates are one text whatever the seeds (docs/seq2seq.md: MBR over them is
    the k = 1 output at k times the NFE, so the grid leaves those cells out)."""
    _, den, _ = seq2seq_models
    loaded = load(den)
    sampler = build_sampler(loaded, SamplerSpec.parse(spec), 5, SOURCES)
    d = decode(loaded, SOURCES, sampler, 5, k=3, seed=7, temperature=0.0)
    assert all(len(set(c)) == 1 for c in d.candidates)


def test_ar_twin_greedy_and_beam(seq2seq_models):
    _, _, ar = seq2seq_models
    loaded = load(ar)
    greedy = translate(loaded, SOURCES, make_sampler("ar"), 10, temperature=0.0)
    beam1 = translate(loaded, SOURCES, None, 10, beam=1)
    assert greedy["targets"] == beam1["targets"]  # beam width 1 is greedy decoding
    beam = translate(loaded, SOURCES, None, 10, beam=3)
    assert len(beam["targets"]) == 4 and max(beam["nfe"]) <= 10


def test_translate_cli_reads_lines_and_reports_truncation(seq2seq_models, tmp_path, capsys):
    _, den, _ = seq2seq_models
    src = tmp_path / "in.txt"
    src.write_text("cat runs\n" + " ".join(["dog"] * 20) + "\n")
    out = tmp_path / "out.txt"
    assert main(["translate", "--checkpoint", str(den), "--sampler", "fixed", "--steps", "4", "--mbr", "2",
                 "--input", str(src), "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert "1 source line(s) longer than the model's 8 source tokens were truncated (lines 2)" \
        in capsys.readouterr().err
    assert main(["translate", "--checkpoint", str(den), "--sampler", "mdlm", "--steps", "3",
                 "--input", str(src), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["truncation"]["sources"] == 1


@pytest.mark.parametrize("text, args, message", [
    ("cat\n", ["--mbr", "0"], "--mbr must be >= 1"),
    ("cat\n\ndog\n", [], r"in.txt:2: empty line"),
    ("cat\nZebra\n", [], r"source line 2: characters outside the tokenizer: 'Z'"),
])
def test_translate_bad_input_gets_one_message(seq2seq_models, tmp_path, capsys, text, args, message):
    _, den, _ = seq2seq_models
    src = tmp_path / "in.txt"
    src.write_text(text)
    rc = main(["translate", "--checkpoint", str(den), "--sampler", "fixed", "--steps", "3",
               "--input", str(src), *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ardm: error:") and len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_the_bundled_multi30k_pair_translates_a_sentence():
    """The bundled denoiser (distilled, adapted from its AR twin) and the twin decode one sentence to
    German words ending at EOS, with the budgets they were evaluated at (docs/seq2seq.md)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "checkpoints"
    den, ar = load(root / "multi30k-en-de"), load(root / "multi30k-en-de-ar")
    sampler = build_sampler(den, SamplerSpec.parse("edit"), 5, ["A man is riding a bike."])
    out = translate(den, ["A man is riding a bike."], sampler, 5, temperature=0.0)
    beam = translate(ar, ["A man is riding a bike."], None, 36, beam=4)
    for text in (out["targets"][0], beam["targets"][0]):
        assert text.startswith("Ein Mann") and len(text.split()) < 12
    assert out["nfe"][0] <= 6  # the budget, plus at most the final fill
