"""report.html (issue 19): the summary table, inline plots and links to viewer pages, all escaped.
The end-to-end check (a real compare writes it, its links resolve) is in test_compare.py."""

from __future__ import annotations

import base64
import re

from ardm.evaluation.html_report import report_html, write_html_report


def run(label: str, K: int, viewer: str | None = None) -> dict:
    r = {"label": label, "sampler": "gate", "nfe": K, "nfe_budget": K, "gen_ppl": 10.0 + K,
         "gen_ppl_ci": [9.0, 11.0 + K], "entropy": 3.0, "entropy_ci": [2.9, 3.1], "distinct_2": 0.2,
         "overwrites_per_step": 0.5, "fraction_revised": 0.25,
         "focus_thirds": {"early": 0.3, "middle": 0.3, "late": 0.4}, "s_per_revision": None,
         "tokens_per_s": 10}
    return {**r, "viewer": viewer} if viewer else r


def results() -> dict:
    return {"kind": "compare", "config": {"nfe": [4, 8], "num": 2, "entropy_tolerance": 0.1},
            "checkpoint": {"path": "ckpt"}, "reference": {"path": "ref"}, "tokens_per_sample": 4,
            "git_commit": "abc", "data": None, "skipped": [],
            "runs": [run("<script>x</script>", 4, "viewer/a.html"), run("fixed", 8, "viewer/b&c.html"),
                     run("old", 8)]}


def test_the_report_holds_the_table_escaped_links_and_inline_plots(tmp_path):
    png = tmp_path / "quality_vs_nfe.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    page = report_html(results(), [png, tmp_path / "missing.png"])
    assert "<script" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert page.count("<tr>") == 1 + 3  # header + one row per run
    # a link for each run with a page
    assert re.findall(r'<a href="([^"]+)"', page) == ["viewer/a.html", "viewer/b&amp;c.html"]
    data = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(data) == png.read_bytes() and page.count("<img") == 1
    assert "NFE 4: <b>&lt;script&gt;" in page  # the best run at each budget
    out = write_html_report(results(), tmp_path, [png])
    assert out == tmp_path / "report.html" and out.read_text().startswith("<!DOCTYPE html>")
