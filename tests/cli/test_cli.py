"""The command line: help texts, the happy path, and one clear error line for each bad input."""

from __future__ import annotations

import argparse
import json

import pytest

from ardm.cli import build_parser, main

TINY = ["--no-progress", "--batch-size", "4", "--set", "model.n_layer=1", "--set", "model.d_model=16",
        "--set", "model.n_head=2", "--set", "model.max_len=16", "--set", "data.seq_len=16",
        "--set", "train.warmup_steps=2", "--set", "train.eval_interval=100"]


def _train_tiny(capsys, run_dir, steps: int = 2) -> int:
    return run(capsys, "train", "--recipe", "demo-char", *TINY, "--out", str(run_dir),
               "--max-steps", str(steps))[0]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clear_error(code, err, *needles):
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("ardm: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("cmd", ["train", "eval", "recipes", "export", "demo"])
def test_help_explains_each_command(capsys, cmd):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: ardm" in capsys.readouterr().out


def _actions(parser: argparse.ArgumentParser, command: str = "ardm"):
    """(command, action) for every action of the parser tree, subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{command} {name}")
        else:
            yield command, action


def test_every_argument_has_a_help_string():
    missing = [f"{command} {'/'.join(action.option_strings) or action.dest}"
               for command, action in _actions(build_parser())
               if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()]
    assert not missing, "arguments without a help string:\n" + "\n".join(missing)


def test_recipes_lists_the_required_recipes(capsys):
    code, out, _ = run(capsys, "recipes")
    assert code == 0
    for name in ("shakespeare-char", "shakespeare-char-ar", "wikitext2-bpe", "wikitext2-bpe-ar"):
        assert name in out


def test_train_then_eval_json(capsys, tmp_path):
    run_dir = tmp_path / "r"
    code, out, err = run(capsys, "train", "--recipe", "demo-char", *TINY, "--out", str(run_dir),
                         "--max-steps", "5")
    assert code == 0, err
    code, out, err = run(capsys, "eval", "--checkpoint", str(run_dir), "--json", "--draws", "2")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["bits_per_char"] > 0 and rep["bits_per_char_se"] > 0 and rep["draws"] == 2
    assert rep["estimator"].startswith("MDLM absorbing NELBO") and len(rep["data_sha256"]) == 64


@pytest.mark.parametrize("argv, needles", [
    (["train", "--recipe", "nope"], ["unknown recipe 'nope'", "shakespeare-char"]),
    (["train", "--recipe", "demo-char", "--set", "model.widht=3"], ["unknown config key", "model.widht"]),
    (["train", "--recipe", "demo-char", "--set", "train.max_steps=-1"], ["train.max_steps"]),
    (["train", "--recipe", "demo-char", "--set", "data.bpe_vocab_size=0"], ["data.bpe_vocab_size"]),
    (["train", "--recipe", "demo-char", "--set", "noise.kind=gaussian"], ["noise.kind"]),
    (["train", "--recipe", "demo-char", "--max-steps", "0"], ["--max-steps"]),
    (["train", "--recipe", "demo-char", "--max-minutes", "-1"], ["--max-minutes"]),
    (["train", "--recipe", "demo-char", "--set", "model.d_model"], ["section.key=value"]),
])
def test_bad_config_gives_one_clear_line(capsys, tmp_path, argv, needles):
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "r"))
    assert_clear_error(code, err, *needles)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, needle", [
    (None, "corpus not found"),
    (b"", "empty"),
    (b"   \n\n ", "empty"),
    (b"\x00\x01\x02binary\x00", "binary"),
    (b"\xff\xfe\xfa not utf8", "not UTF-8"),
    (b"too short", "fewer than one block"),
])
def test_bad_corpus_gives_one_clear_line(capsys, tmp_path, content, needle):
    corpus = tmp_path / "corpus.txt"
    if content is not None:
        corpus.write_bytes(content)
    code, _, err = run(capsys, "train", "--recipe", "demo-char", *TINY, "--data", str(corpus),
                       "--out", str(tmp_path / "r"), "--max-steps", "2")
    assert_clear_error(code, err, needle)
    assert not (tmp_path / "r" / "LATEST").exists()


def test_eval_of_a_damaged_checkpoint_gives_one_clear_line(capsys, tmp_path):
    run_dir = tmp_path / "r"
    assert _train_tiny(capsys, run_dir) == 0
    ckpt = next(run_dir.glob("ckpt-*"))
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, _, err = run(capsys, "eval", "--checkpoint", str(run_dir))
    assert_clear_error(code, err, "truncated")
    code, _, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "missing"))
    assert_clear_error(code, err, "checkpoint not found")


def test_eval_on_text_the_tokenizer_cannot_encode(capsys, tmp_path):
    run_dir = tmp_path / "r"
    assert _train_tiny(capsys, run_dir) == 0
    other = tmp_path / "other.txt"
    other.write_text("日本語のテキスト" * 200, encoding="utf-8")
    code, _, err = run(capsys, "eval", "--checkpoint", str(run_dir), "--data", str(other))
    assert_clear_error(code, err, "outside the tokenizer's vocabulary")


def test_table_renders_eval_results_and_refuses_other_files(capsys, tmp_path):
    good = tmp_path / "e.json"
    good.write_text(json.dumps({"recipe": "r", "split": "val", "estimator": "exact causal NLL",
                                "bits_per_char": 2.1746, "bits_per_char_se": 0.0, "bits_per_token": 2.1746,
                                "tokens": 111360, "data_sha256": "86c4e6aa9db7c042" + "0" * 48}))
    code, out, _ = run(capsys, "table", str(good))
    assert code == 0
    assert "| - | r | val | exact causal NLL | 2.175 | 2.175 | +0.0% | 111,360 | 86c4e6aa9db7 |" in out
    second = tmp_path / "d.json"  # a second row reads its bits/char relative to the first
    second.write_text(json.dumps({"checkpoint": "runs/d", "recipe": "d", "split": "val",
                                  "estimator": "nelbo", "bits_per_char": 2.3920, "bits_per_char_se": 0.008,
                                  "bits_per_token": 2.3920, "tokens": 111360, "data_sha256": "0" * 64}))
    code, out, _ = run(capsys, "table", str(good), str(second))
    assert code == 0
    assert "| runs/d | d | val | nelbo | 2.392 ± 0.008 | 2.392 | +10.0% |" in out
    bad = tmp_path / "b.json"
    bad.write_text("{}")
    code, _, err = run(capsys, "table", str(bad))
    assert_clear_error(code, err, "not an `ardm eval --json` result")


def test_eval_refuses_uniform_noise_models(capsys, tmp_path):
    run_dir = tmp_path / "u"
    code, _, err = run(capsys, "train", "--recipe", "demo-char", *TINY, "--set", "noise.kind=uniform",
                       "--out", str(run_dir), "--max-steps", "2")
    assert code == 0, err
    code, _, err = run(capsys, "eval", "--checkpoint", str(run_dir))
    assert_clear_error(code, err, "uniform-noise model")


def test_a_trace_into_a_missing_folder_and_a_non_utf8_table_give_one_line(capsys, tmp_path):
    """Both ended in a traceback once (issue 16); now one `ardm: error:` line each, exit 2."""
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"caf\xe9": 1}')
    assert main(["table", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ardm: error:") and "not UTF-8" in err and err.count("\n") == 1
    trace = tmp_path / "does" / "not" / "exist" / "t.json"
    assert main(["sample", "--checkpoint", "checkpoints/shakespeare-char", "--sampler", "mdlm",
                 "--steps", "2", "--length", "4", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ardm: error: --trace") and "does not exist" in err and err.count("\n") == 1


def test_sample_blocks_and_cache_flags(capsys):
    """--block-size runs semi-AR blocks; --cache exact on a bidirectional model is one clear error,
    as is a block size that does not divide the length (SPEC §11.6)."""
    base = ["sample", "--checkpoint", "checkpoints/shakespeare-char", "--sampler", "mdlm", "--steps", "4",
            "--length", "16", "--no-progress", "--json"]
    assert main(base + ["--block-size", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["block_size"] == 8 and out["samples"][0]["nfe"] == 4
    for extra, msg in ((["--cache", "exact"], "exact KV cache needs a block_causal"),
                       (["--block-size", "5"], "must divide the length"),
                       (["--block-size", "8", "--cache", "dual"], "ask for it with --approximate")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("ardm: error:") and msg in err and err.count("\n") == 1
    assert main(base + ["--block-size", "8", "--cache", "dual", "--approximate"]) == 0
    assert json.loads(capsys.readouterr().out)["cache"] == "dual"


def test_sample_takes_a_compare_style_spec_and_set_overrides_it(capsys):
    base = ["sample", "--checkpoint", "checkpoints/shakespeare-char", "--steps", "4", "--length", "12",
            "--no-progress", "--json", "--temperature", "0.7"]
    assert main(base + ["--sampler", "gate:reveal=joint:eta=0.2", "--set", "eta=0.3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sampler"] == "gate" and out["options"]["reveal"] == "joint" and out["options"]["eta"] == 0.3
    assert main(base + ["--sampler", "gate-linear"]) == 0
    assert json.loads(capsys.readouterr().out)["options"]["gate"] == "linear"
    assert main(base + ["--sampler", "gate:temperature=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ardm: error:") and "temperature=" in err and err.count("\n") == 1
