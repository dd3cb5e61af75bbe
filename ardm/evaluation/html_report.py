"""report.html of an `ardm compare` / `ardm ablate` / `ardm demo` result (issue 19).

The same summary table as summary.md, the best run at each budget, the plots inline (base64 PNG,
so the file stands alone) and per run a link to the viewer page of its first sample
(`viewer/*.html` beside it, written by ardm.evaluation.compare). No script, no network.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ardm.core.checkpoint import atomic_write_text
from ardm.evaluation.report import best_by_budget, summary_table

__all__ = ["report_html", "write_html_report"]

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:20px;color:#222;max-width:1200px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#eee}td:nth-child(2){text-align:left}img{max-width:100%;margin:8px 0}
h1{font-size:20px}h2{font-size:16px;margin-top:24px}"""


def _table(rows: list[str]) -> str:
    """A markdown table (summary_table's lines) as HTML, every cell escaped."""
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    head, body = cells[0], cells[2:]  # cells[1] is the |---| rule
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(out + ["</table>"])


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def report_html(results: dict, plots: list[Path]) -> str:
    cfg, e = results["config"], html.escape
    best = [f"<li>NFE {K}: " + (f"<b>{e(r['label'])}</b> (gen-PPL {r['gen_ppl']:.2f}, entropy "
                                 f"{r['entropy']:.3f})" if r else "no eligible run") + "</li>"
            for K, r in best_by_budget(results).items()]
    runs = sorted(results["runs"], key=lambda r: (r["nfe_budget"], r["label"]))
    links = [f'<li><a href="{e(r["viewer"])}">{e(r["label"])} at NFE {r["nfe_budget"]}</a>'
             f"{e(_point(r, results))}</li>" for r in runs if r.get("viewer")]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>ardm {e(results['kind'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>ardm {e(results['kind'])}: {e(str(results['checkpoint']['path']))}</h1>",
        f"<p>{cfg['num']} samples per run, {results['tokens_per_sample']} tokens each, scored by "
        f"{e(str(results['reference']['path']))}; git commit {e(str(results['git_commit']))}. "
        "summary.md beside this file has the method and every statement.</p>",
        "<h2>Results</h2>", _table(summary_table(results)),
        "<h2>Best at each budget (entropy-matched)</h2>", "<ul>", *best, "</ul>",
        "<h2>Watch a sample</h2><p>The first sample of each run, step by step (ardm view):</p>",
        "<ul>", *links, "</ul>", "<h2>Plots</h2>", *[_image(p) for p in plots if p.is_file()],
        "</body></html>"]
    return "\n".join(parts) + "\n"


def _point(run: dict, results: dict) -> str:
    sweep = (results.get("frontier") or {}).get("sweep")
    return f" ({sweep} {run[sweep]:g})" if sweep else ""


def write_html_report(results: dict, out: Path, plots: list[Path]) -> Path:
    path = Path(out) / "report.html"
    atomic_write_text(path, report_html(results, plots))
    return path
