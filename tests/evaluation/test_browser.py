"""The viewer in a real browser (issue 19): headless Chromium loads the page from a file URL, and
the DOM after the script ran is checked (token count, the step a `#step=N` fragment or the play
button reaches, the state at that step, no script error), and a screenshot is taken.

Skipped with its reason where no Chromium is installed (`.ci/run` installs the Debian package).
`ARDM_VIEWER_SCREENSHOTS=docs` also writes the README's two screenshots from the bundled
checkpoints (test_docs_screenshots), through the same code path.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from ardm.evaluation.browser import dump_dom, find_chromium, page_state, screenshot
from ardm.evaluation.viewer import page_data, write_page
from ardm.generation.trace import read_trace, trace_document
from tests.evaluation.test_viewer import EVIL, EvilTokenizer, text_doc

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium installed: the viewer's browser test needs the Debian package `chromium` "
           "(apt-get install chromium; .ci/run installs it)")
ROOT = Path(__file__).resolve().parents[2]


def glyph(text: str | None, sudoku: bool = False) -> str:
    """What the page shows for a token (viewer.js `glyph`)."""
    if text is None:
        return "" if sudoku else "\u00b7"
    return text.replace("\n", "\u21b5").replace("\t", "\u21e5") or "\u2205"


def expected(data: dict, step: int) -> list[str | None]:
    state: list[int | None] = [None] * data["length"]
    for pos, t in data["initial"]:
        state[pos] = t
    for s in data["steps"][:step]:
        for i in range(0, len(s["ev"]), 3):
            state[s["ev"][i]] = None if s["ev"][i + 2] < 0 else s["ev"][i + 2]
    return [None if t is None else data["tokens"][t] for t in state]


def load(page: Path, fragment: str):
    dom, _ = dump_dom(page, fragment)
    st = page_state(dom)
    assert st.errors == "" and st.body.get("data-ready") == "1", st.errors
    assert st.scripts == 2  # the data and the viewer: token strings never became script elements
    return st


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_a_text_trace_in_chromium_steps_plays_escapes_and_screenshots(tmp_path):
    doc, g = text_doc("remdm", length=16, steps=8)
    doc["vocab"] = {k: EvilTokenizer.table[i % len(EvilTokenizer.table)] for i, k in enumerate(doc["vocab"])}
    page = write_page(doc, tmp_path / "p.html")
    data = page_data(doc)
    S = len(data["steps"])
    st = load(page, "step=3&pos=5")
    assert len(st.cells) == 16 and st.body["data-step"] == "3"
    want = expected(data, 3)
    assert [c["text"] for c in st.cells] == [glyph(t) for t in want]
    assert int(st.board["data-masked"]) == want.count(None) > 0
    assert "fixed" in st.cells[0]["class"] and "masked" in st.cells[-1]["class"]
    assert "focus" in st.cells[5]["class"] and st.history.startswith("position 5: step ")
    last = load(page, "step=last")
    assert last.body["data-step"] == str(S) and last.board["data-masked"] == "0"
    assert [c["text"] for c in last.cells] == [glyph(t) for t in expected(data, S)]
    assert EVIL in [c["text"] for c in last.cells]  # shown as text, not run
    played = load(page, "play")  # the play button's timer, run on virtual time
    assert int(played.body["data-step"]) > 0
    shot = screenshot(page, tmp_path / "p.png", "step=4", size=(800, 500))
    assert png_size(shot) == (800, 500)


def sudoku_doc() -> dict:
    """A hand-made Sudoku trace: givens, a wrong digit that conflicts, then its overwrite."""
    from ardm.core.tokenizer import CharTokenizer
    from ardm.data.sudoku_puzzles import make_puzzles

    (puzzle, solution), = make_puzzles(1, 40, seed=0)
    tok = CharTokenizer(list("\n123456789"))
    P, ids = 1, {d: d for d in range(1, 10)}  # digit d is token id d; "\n" is 0
    blanks = [c for c in range(81) if not puzzle[c]]
    wrong = blanks[0]
    bad = next(d for d in range(1, 10) if d != solution[wrong] and d in
               [solution[c] for c in range(81) if c // 9 == wrong // 9])  # repeats a digit of its row
    records = [
        {"k": 1, "written": [[[P + c, ids[bad if c == wrong else solution[c]]] for c in blanks]],
         "overwritten": [[]], "remasked": [[]]},
        {"k": 2, "written": [[]], "overwritten": [[[P + wrong, ids[bad], ids[solution[wrong]]]]],
         "remasked": [[]]},
    ]
    chunk = {"sampler": "hand", "options": {}, "length": 82, "prompt_length": P, "steps": 2,
             "initial": [[[0, 0]] + [[P + c, ids[d]] for c, d in enumerate(puzzle) if d]], "records": records}
    return trace_document([chunk], tok, checkpoint="none", task="sudoku")


def test_a_sudoku_trace_in_chromium_marks_givens_and_outlines_conflicts(tmp_path):
    doc = sudoku_doc()
    page = write_page(doc, tmp_path / "s.html")
    st = load(page, "step=1")
    assert len(st.cells) == 81
    assert sum("fixed" in c["class"] for c in st.cells) == 40
    assert int(st.board["data-conflicts"]) >= 2 and sum("conflict" in c["class"] for c in st.cells) >= 2
    done = load(page, "step=2")
    assert done.board["data-conflicts"] == "0" and sum("over" in c["class"] for c in done.cells) == 1


@pytest.mark.skipif(not os.environ.get("ARDM_VIEWER_SCREENSHOTS"),
                    reason="set ARDM_VIEWER_SCREENSHOTS=DIR to write the docs' screenshots into DIR")
def test_docs_screenshots(tmp_path):
    """docs/viewer-text.png (the bundled denoiser, default gate) and docs/viewer-sudoku.png."""
    from ardm.cli import main
    from ardm.data.sudoku_puzzles import make_puzzles, write_puzzles

    out = Path(os.environ["ARDM_VIEWER_SCREENSHOTS"])
    ckpt = ROOT / "checkpoints"
    assert main(["sample", "--checkpoint", str(ckpt / "shakespeare-char"), "--sampler", "gate",
                 "--steps", "64", "--no-progress", "--trace", str(tmp_path / "t.json"),
                 "--html", str(tmp_path / "text.html")]) == 0
    steps = page_data(read_trace(tmp_path / "t.json"))["steps"]
    events = [[s["ev"][i] for i in range(0, len(s["ev"]), 3)] for s in steps]
    early = sum(events[:40], [])
    pos = max(set(early), key=early.count)  # the most revised position up to step 40: its history shows
    st = load(tmp_path / "text.html", f"step=40&pos={pos}")
    assert len(st.cells) == 256 and st.history.count("step") == sum(events, []).count(pos)
    screenshot(tmp_path / "text.html", out / "viewer-text.png", f"step=40&pos={pos}", size=(1100, 820))
    write_puzzles(tmp_path / "p.csv", make_puzzles(1, 30, seed=3))
    assert main(["sudoku", "solve", "--checkpoint", str(ckpt / "sudoku-puzzles"), "--puzzles",
                 str(tmp_path / "p.csv"), "--html", str(tmp_path / "sudoku.html")]) == 0
    st = load(tmp_path / "sudoku.html", "step=12")
    assert len(st.cells) == 81
    screenshot(tmp_path / "sudoku.html", out / "viewer-sudoku.png", "step=12", size=(900, 820))
