"""The --show renderer replays a trace faithfully: the last frame is the generated text."""

from __future__ import annotations

import io

import torch

from ardm.cli.show import MASK_GLYPH, animate, frames, render
from ardm.core.tokenizer import CharTokenizer
from ardm.generation.loop import generate
from ardm.generation.registry import make_sampler


def _model():
    from ardm.core.config import ModelConfig
    from ardm.core.model import TransformerDenoiser

    torch.manual_seed(0)
    return TransformerDenoiser(ModelConfig(vocab_size=6, n_layer=1, n_head=2, d_model=16, max_len=12)).eval()


def test_replayed_frames_end_in_the_generated_tokens_for_revising_samplers():
    model = _model()
    for name in ("gate", "remdm", "mdlm"):
        g = generate(model, make_sampler(name), length=12, steps=6, batch=2, prompt=torch.tensor([1, 2]),
                     seed=3, trace=True)
        for row in range(2):
            last = list(frames(g.trace, [1, 2], row))[-1][1]
            assert last == g.tokens[row].tolist(), name


def test_render_marks_masks_and_keeps_plain_text_without_colour():
    tok = CharTokenizer(list("abc\n"))
    text = render([0, None, 2, 3], written={2}, overwritten=set(), decode_one=lambda t: tok.decode([t]),
                  color=False)
    assert text == f"a{MASK_GLYPH}c\n"
    coloured = render([0, None], written={0}, overwritten={1}, decode_one=lambda t: tok.decode([t]))
    assert "\x1b[32ma" in coloured and "\x1b[1;31" in coloured


def test_animate_on_a_non_terminal_prints_one_frame_per_step_with_overwrite_counts():
    model = _model()
    g = generate(model, make_sampler("gate"), length=10, steps=5, prompt=torch.tensor([1]), seed=0,
                 trace=True)
    buf = io.StringIO()
    animate(g.trace, CharTokenizer(list("abcdef")), [1], stream=buf)
    frames_out = [ln for ln in buf.getvalue().splitlines() if ln.startswith("--- ")]
    assert len(frames_out) == len(g.trace["records"])
    total = sum(len(r["overwritten"][0]) + len(r["remasked"][0]) for r in g.trace["records"])
    assert f"{total} overwritten)" in frames_out[-1]
    assert "\x1b[" not in buf.getvalue()


def test_cli_show_replays_every_step_of_the_first_sample(tmp_path, capsys):
    from ardm.cli import main
    from ardm.training.loop import train
    from tests.conftest import tiny_config

    train(tiny_config(steps=4), tmp_path / "r", progress=False)
    code = main(["sample", "--checkpoint", str(tmp_path / "r"), "--sampler", "gate", "--steps", "4",
                 "--length", "12", "--prompt", "To", "--show", "--num", "2"])
    out = capsys.readouterr().out
    assert code == 0
    steps = [ln for ln in out.splitlines() if ln.startswith("--- gate  step")]
    assert [ln.split()[3] for ln in steps][:4] == ["1/4", "2/4", "3/4", "4/4"]
    assert out.count("--- seed ") == 2  # both samples are still printed after the animation
