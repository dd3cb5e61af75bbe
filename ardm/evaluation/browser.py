"""Headless Chromium for the viewer's browser test, its benchmark and the docs' screenshots (issue 19).

A page is loaded from a file URL (offline: nothing else is reachable) with a fragment such as
`#step=5`, given a budget of virtual time for its script, and either its DOM after the script ran
is returned (`--dump-dom`) or a screenshot is written. Chromium is the Debian package `chromium`
(`apt-get install chromium`); `ARDM_CHROMIUM` names another binary. Each call uses a fresh profile
folder, so parallel calls do not share (or lock) one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from ardm.errors import ArdmError

__all__ = ["find_chromium", "dump_dom", "screenshot", "PageState", "page_state"]

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars")


def find_chromium() -> str | None:
    """The Chromium binary: $ARDM_CHROMIUM, else the first of NAMES on PATH; None if there is none."""
    named = os.environ.get("ARDM_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((p for p in map(shutil.which, NAMES) if p), None)


def _run(page: Path, fragment: str, extra: list[str], budget_ms: int, timeout: float) -> tuple[str, float]:
    binary = find_chromium()
    if binary is None:
        raise ArdmError("no Chromium found (install the Debian package: apt-get install chromium)")
    url = Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    with tempfile.TemporaryDirectory(prefix="ardm-chromium-") as profile:
        # virtual time lets timers (play) run without waiting; 0 = real time (the benchmark's clock)
        budget = [f"--virtual-time-budget={budget_ms}"] if budget_ms else []
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *budget, *extra, url]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise ArdmError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout, wall


def dump_dom(page: str | Path, fragment: str = "", budget_ms: int = 2000, timeout: float = 120):
    """(the page's DOM after its script ran, as HTML; wall seconds of the Chromium run, its start
    included)."""
    return _run(Path(page), fragment, ["--dump-dom"], budget_ms, timeout)


def screenshot(page: str | Path, out_png: str | Path, fragment: str = "", size: tuple[int, int] = (1100, 800),
               budget_ms: int = 2000, timeout: float = 120) -> Path:
    """A PNG of the page (at `size` pixels) after its script ran."""
    out_png = Path(out_png).resolve()
    _run(Path(page), fragment, [f"--screenshot={out_png}", f"--window-size={size[0]},{size[1]}"],
         budget_ms, timeout)
    if not out_png.is_file():
        raise ArdmError(f"chromium wrote no screenshot at {out_png}")
    return out_png


class PageState(HTMLParser):
    """What the viewer's DOM says about itself: body data-* attributes, the board's, the token
    cells (class and text), the history line and the error box's text."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.board: dict[str, str] = {}
        self.cells: list[dict] = []  # {"class": ..., "text": ...}
        self.errors = ""
        self.history = ""
        self.scripts = 0
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        elif tag == "script":
            self.scripts += 1
        elif a.get("id") == "board":
            self.board = a
        elif a.get("id") in ("errors", "history"):
            self._in = a["id"]
        elif "tok" in a.get("class", "").split():
            self.cells.append({"class": a["class"], "text": ""})
        elif a.get("class") == "t" and self.cells:
            self._in = "cell"

    def handle_endtag(self, tag):
        if tag in ("pre", "span", "p"):
            self._in = None

    def handle_data(self, data):
        if self._in == "errors":
            self.errors += data
        elif self._in == "history":
            self.history += data
        elif self._in == "cell":
            self.cells[-1]["text"] += data


def page_state(dom: str) -> PageState:
    state = PageState()
    state.feed(dom)
    return state
