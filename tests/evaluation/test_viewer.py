"""The viewer's HTML generator, without a browser (issue 19): deltas that replay the trace, escaping,
the gate's bytes, small pages for large traces. tests/evaluation/test_browser.py runs it in Chromium."""

from __future__ import annotations

import base64
import json
import random
import re

import pytest
import torch

from ardm.core.config import ModelConfig
from ardm.core.model import TransformerDenoiser
from ardm.core.tokenizer import CharTokenizer
from ardm.errors import ArdmError
from ardm.evaluation.viewer import page_data, render_page, view, write_page
from ardm.generation.loop import generate
from ardm.generation.registry import make_sampler
from ardm.generation.trace import trace_document

EVIL = "<script>alert(1)</script>"


def text_doc(sampler: str = "gate", length: int = 12, steps: int = 6, batch: int = 2, vocab=None):
    torch.manual_seed(0)
    tok = CharTokenizer(vocab or list("ab \n<>"))
    model = TransformerDenoiser(ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=16,
                                            max_len=length)).eval()
    g = generate(model, make_sampler(sampler), length=length, steps=steps, batch=batch,
                 prompt=torch.tensor([0]), seed=2, trace=True)
    return trace_document([{"first_sample": 0, **g.trace}], tok, checkpoint="toy/ckpt"), g


class EvilTokenizer:
    """Token strings full of HTML: a BPE vocabulary may hold any of them."""

    table = ["a", EVIL, "</script><b>", "&amp;", "\"'", "\n"]
    vocab_size = len(table)

    def decode(self, ids):
        return "".join(self.table[i] for i in ids)


def replay(data: dict) -> list[int]:
    state = [-1] * data["length"]
    for pos, t in data["initial"]:
        state[pos] = t
    for step in data["steps"]:
        ev = step["ev"]
        for i in range(0, len(ev), 3):
            state[ev[i]] = ev[i + 2]
    return state


@pytest.mark.parametrize("sampler", ["gate", "remdm", "mdlm"])
def test_the_deltas_replay_to_the_generated_tokens(sampler):
    doc, g = text_doc(sampler)
    for row in range(2):
        data = page_data(doc, row)
        want = [doc["vocab"][str(t)] for t in g.tokens[row].tolist()]
        assert [data["tokens"][t] for t in replay(data)] == want
        writes = sum(step["ev"][1::3].count(0) for step in data["steps"])
        assert writes == g.writes[row]


def test_html_in_token_strings_and_titles_is_escaped():
    doc, _ = text_doc(length=10)
    doc["vocab"] = {k: EvilTokenizer.table[i % len(EvilTokenizer.table)] for i, k in enumerate(doc["vocab"])}
    page = render_page(doc, title="<b>bold</b> & co")
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data and the script only
    assert EVIL not in page and "<b>" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    data = json.loads(re.search(r'id="trace-data">(.*?)</script>', page, re.S).group(1))
    assert set(data["tokens"]) <= set(EvilTokenizer.table) and EVIL in data["tokens"]


def test_the_gate_is_stored_as_one_byte_per_position():
    doc, g = text_doc("gate")
    data = page_data(doc, 1)
    rec = doc["chunks"][0]["records"][0]
    got = list(base64.b64decode(data["steps"][0]["gate"]))
    assert len(got) == 11 and all(abs(b / 255 - p) <= 0.5 / 255 + 1e-9 for b, p in zip(got, rec["gate"][1]))
    assert "gate" not in page_data(text_doc("mdlm")[0])["steps"][0]


def synthetic_doc(length: int, steps: int, seed: int = 0) -> dict:
    """A trace of `length` positions over `steps` steps: every position written once, a few
    overwrites and remasks per step, the gate's p everywhere (the benchmark's shape, smaller)."""
    rng = random.Random(seed)
    order = list(range(1, length))
    rng.shuffle(order)
    per = -(-len(order) // steps)
    records, visible = [], []
    for k in range(1, steps + 1):
        new = order[(k - 1) * per: k * per]
        over = rng.sample(visible, min(3, len(visible)))
        records.append({"k": k, "written": [[[p, rng.randrange(60)] for p in new]],
                        "overwritten": [[[p, 0, rng.randrange(60)] for p in over]], "remasked": [[]],
                        "gate": [[round(rng.random(), 4) for _ in range(length - 1)]]})
        visible += new
    chunk = {"sampler": "synthetic", "options": {}, "length": length, "prompt_length": 1, "steps": steps,
             "initial": [[[0, 0]]], "records": records}
    return trace_document([chunk], CharTokenizer([chr(48 + i) for i in range(60)]), checkpoint="none")


def test_a_large_trace_stores_deltas_not_states():
    small, large = (render_page(synthetic_doc(129, s)) for s in (32, 128))
    doc = synthetic_doc(129, 128)
    changes = sum(len(r["written"][0]) + len(r["overwritten"][0]) for r in doc["chunks"][0]["records"])
    assert sum(len(s["ev"]) for s in page_data(doc)["steps"]) == 3 * changes  # one triple per change
    assert len(large.encode()) < 2 * 2 ** 20
    # the gate's bytes dominate: 4x the steps, at most ~4x the size (a state per step would be far more)
    assert len(large) < 4.5 * len(small)


def test_steps_after_the_last_change_are_left_out_and_sudoku_needs_81_cells():
    doc = synthetic_doc(20, 4)
    doc["chunks"][0]["records"] += [{"k": 5, "written": [[]], "overwritten": [[]], "remasked": [[]]}]
    assert len(page_data(doc)["steps"]) == 4
    doc["task"] = "sudoku"
    with pytest.raises(ArdmError, match="81 positions after the prompt, this one has 19"):
        page_data(doc)


def test_view_writes_beside_the_trace_and_refuses_a_missing_folder(tmp_path):
    doc, _ = text_doc()
    (tmp_path / "t.json").write_text(json.dumps(doc))
    out = view(tmp_path / "t.json")
    assert out == tmp_path / "t.html" and "<!DOCTYPE html>" in out.read_text()
    with pytest.raises(ArdmError, match="does not exist"):
        write_page(doc, tmp_path / "no" / "p.html")
