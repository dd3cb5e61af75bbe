"""Trace files (issue 19): a loop trace + the strings of its token ids, checked on reading."""

from __future__ import annotations

import json

import pytest
import torch

from ardm.core.config import ModelConfig
from ardm.core.model import TransformerDenoiser
from ardm.core.tokenizer import CharTokenizer
from ardm.errors import ArdmError
from ardm.generation.loop import generate
from ardm.generation.registry import make_sampler
from ardm.generation.trace import check_trace, one_sample, read_trace, row_trace, trace_document

TOK = CharTokenizer(list("abcde"))


def _model(vocab: int = 5, max_len: int = 12):
    torch.manual_seed(0)
    return TransformerDenoiser(ModelConfig(vocab_size=vocab, n_layer=1, n_head=2, d_model=16,
                                           max_len=max_len)).eval()


def _replay(trace: dict, row: int) -> list[int | None]:
    state: list[int | None] = [None] * trace["length"]
    for pos, tok in trace["initial"][row]:
        state[pos] = tok
    for rec in trace["records"]:
        for pos, tok in rec["written"][row]:
            state[pos] = tok
        for pos, _old, new in rec["overwritten"][row]:
            state[pos] = new
        for pos, _old in rec["remasked"][row]:
            state[pos] = None
    return state


def test_initial_tokens_hold_the_prompt_and_the_givens_and_replay_ends_in_the_output():
    given = torch.tensor([-1, -1, -1, 4, -1, -1, 0, -1, -1, -1])
    g = generate(_model(), make_sampler("gate"), length=10, steps=5, batch=2, prompt=torch.tensor([1, 2]),
                 given=given, seed=1, trace=True)
    assert g.trace["initial"] == [[[0, 1], [1, 2], [3, 4], [6, 0]]] * 2
    for row in range(2):
        assert _replay(g.trace, row) == g.tokens[row].tolist()
        assert _replay(row_trace(g.trace, row), 0) == g.tokens[row].tolist()


def test_a_trace_document_names_every_token_it_uses_and_reads_back(tmp_path):
    g = generate(_model(), make_sampler("remdm"), length=8, steps=4, batch=3, prompt=torch.tensor([0]),
                 trace=True)
    doc = trace_document([{"first_sample": 0, **g.trace}], TOK, checkpoint="toy", seed=0)
    assert doc["format"] == "ardm-trace" and doc["version"] == 1 and doc["task"] == "text"
    assert set(doc["vocab"].values()) <= set("abcde") and doc["vocab"]["0"] == "a"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    back = read_trace(path)
    assert one_sample(back, 2) == (back["chunks"][0], 2)
    with pytest.raises(ArdmError, match=r"sample 3 is not in the trace \(it holds samples 0..2\)"):
        one_sample(back, 3)


def _doc():
    g = generate(_model(), make_sampler("mdlm"), length=6, steps=3, prompt=torch.tensor([0]), trace=True)
    return trace_document([{"first_sample": 0, **g.trace}], TOK, checkpoint="toy")


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("format"), "not a trace file: field 'format' is None"),
    (lambda d: d.update(format="ardm-compare"), "field 'format' is 'ardm-compare'"),
    (lambda d: d.update(version=0), "trace format version 0 is not supported"),
    (lambda d: d.pop("vocab"), "lacks field(s) vocab"),
    (lambda d: d.update(chunks=[]), "holds no chunk"),
    (lambda d: d["chunks"][0].pop("initial"), "chunk 0 lacks field(s) initial"),
    (lambda d: d["chunks"][0]["records"][1].pop("remasked"), "chunk 0, record 1 lacks field(s) remasked"),
    (lambda d: d["vocab"].clear(), "have no entry in the trace's vocab"),
])
def test_a_file_that_is_not_a_trace_gets_one_error_naming_what_is_wrong(change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(ArdmError) as e:
        check_trace(doc, "t.json")
    assert message in str(e.value) and str(e.value).startswith("t.json")


def test_reading_a_missing_or_non_json_file_is_one_clear_error(tmp_path):
    with pytest.raises(ArdmError, match="does not exist"):
        read_trace(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("not json")
    with pytest.raises(ArdmError, match="is not a JSON trace file"):
        read_trace(tmp_path / "x.json")
    (tmp_path / "old.json").write_text(json.dumps({"checkpoint": "c", "chunks": []}))  # before issue 19
    with pytest.raises(ArdmError, match="not a trace file"):
        read_trace(tmp_path / "old.json")
