"""The documentation matches the code (issue 14, part 6).

Every `ardm` command line in README.md, docs/*.md and checkpoints/README.md names a real command
and real flags; the README's Layout section names exactly the module files under ardm/, lowest
layer first; every dotted `ardm.*` name and every repository path in code resolves; every relative
link points at a file (and heading) that exists. No network, no ../shared."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from ardm.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted([README, ROOT / "checkpoints" / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")  # a code span, possibly wrapped over one line break
COMMAND = re.compile(r"(?<![\w./-])ardm (?=[a-z])")  # `ardm sample ...`, not `ardm.load` or `ardm/`
COMMENT = re.compile(r"\s+#\s.*$")  # a shell comment at the end of a code line
SHELL_STOP = {">", ">>", "2>", "#", ";", "&&", "||"}


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_of(text: str) -> tuple[list[str], list[str]]:
    """(lines of fenced code blocks, with `\\` and indented continuations joined; inline code spans)."""
    lines: list[str] = []
    for block in FENCE.findall(text):
        for raw in block.replace("\\\n", " ").splitlines():
            raw = COMMENT.sub("", raw)
            if lines and raw[:1].isspace() and raw.strip() and COMMAND.search(lines[-1]):
                lines[-1] += " " + raw.strip()  # a wrapped synopsis line: `ardm train ...\n     [--seed S]`
            else:
                lines.append(raw)
    prose = FENCE.sub("", text)
    return lines, [span.replace("\n", " ") for span in INLINE.findall(prose)]


def command_lines() -> list[tuple[str, str]]:
    """(document, `ardm ...` command text) for every command named in a code block or code span."""
    found = []
    for doc in DOCS:
        lines, spans = code_of(doc.read_text(encoding="utf-8"))
        for chunk in lines + spans:
            starts = [m.start() for m in COMMAND.finditer(chunk)]
            for a, b in zip(starts, starts[1:] + [len(chunk)]):
                found.append((doc_id(doc), chunk[a:b].split("`")[0].strip()))
    return found


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


def words(command: str) -> list[str]:
    try:
        tokens = shlex.split(command, comments=False)
    except ValueError:  # an unbalanced quote in a prose span: plain words are enough for flags
        tokens = command.split()
    out, depth = [], 0
    for tok in tokens:
        if tok in SHELL_STOP or tok.startswith("#") or (tok == "|" and depth == 0):
            break  # a redirect, a comment or a pipe ends the ardm command
        depth += tok.count("[") - tok.count("]")
        out.append(tok.strip("[]"))
    return out


def resolve(command: str) -> tuple[str, argparse.ArgumentParser, list[str]]:
    """The command's name, its (sub)parser and the words after it; fails for an unknown command."""
    tokens = words(command)
    assert tokens[0] == "ardm"
    commands = subparsers(build_parser())
    name = tokens[1]
    assert name in commands, f"`ardm {name}` is not an ardm command (known: {', '.join(commands)})"
    parser, rest = commands[name], tokens[2:]
    nested = subparsers(parser)
    if nested and rest and re.fullmatch(r"[a-z][\w-]*", rest[0]):
        assert rest[0] in nested, f"`ardm {name} {rest[0]}` is not a subcommand of `ardm {name}`"
        name, parser, rest = f"{name} {rest[0]}", nested[rest[0]], rest[1:]
    return name, parser, rest


def test_docs_name_ardm_commands():
    assert len(command_lines()) > 50  # the README and docs are full of them; the extraction works


@pytest.mark.parametrize("doc,command", command_lines(), ids=lambda v: v[:70])
def test_command_and_flags_exist(doc, command):
    name, parser, rest = resolve(command)
    known = option_strings(parser)
    used = {tok.split("=", 1)[0] for tok in rest if tok.startswith("--") and tok != "--"}
    assert used <= known, f"{doc}: `ardm {name}` has no {sorted(used - known)} (in: {command})"


def test_readme_overview_names_every_command():
    text = README.read_text(encoding="utf-8")
    named = {m.group(1) for m in re.finditer(r"`ardm ([a-z][\w-]*)", text)}
    assert set(subparsers(build_parser())) <= named


# -- (b) the README's Layout section and the tree ------------------------------------------------


def layout_section() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, "README.md has no '## Layout' section"
    return m.group(1)


def layout_modules() -> set[str]:
    """Module files the Layout names: each list item starts with its package, `ardm/core/`, and names
    that package's files, `config.py`; the paths are package + file name."""
    named: set[str] = set()
    for item in re.split(r"^- ", layout_section(), flags=re.M)[1:]:
        spans = re.findall(r"`([^`]+)`", item)
        assert spans and spans[0].startswith("ardm/") and spans[0].endswith("/"), item
        named |= {spans[0] + s for s in spans[1:] if s.endswith(".py")}
    return named


def module_files() -> set[str]:
    return {str(p.relative_to(ROOT)) for p in (ROOT / "ardm").rglob("*.py")}


def test_layout_names_every_module():
    optional = {m for m in module_files() if Path(m).name in ("__init__.py", "__main__.py")}
    missing = module_files() - optional - layout_modules()
    assert not missing, f"README Layout misses {sorted(missing)}"


def test_layout_names_no_missing_module():
    stale = layout_modules() - module_files()
    assert not stale, f"README Layout names files that do not exist: {sorted(stale)}"


def test_layout_is_ordered_by_layer():
    """Lowest layer first, as tests/test_layout.py orders them."""
    order = ["ardm/", "ardm/core/", "ardm/data/", "ardm/generation/", "ardm/evaluation/",
             "ardm/training/", "ardm/tasks/", "ardm/cli/"]
    packages = re.findall(r"^- `(ardm/[^`]*)`", layout_section(), re.M)
    top = [next(p for p in reversed(order) if pkg.startswith(p)) for pkg in packages]
    assert top == sorted(top, key=order.index) and set(top) == set(order)


# -- dotted names and repository paths named in code spans --------------------------------------


def dotted_names() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        lines, spans = code_of(doc.read_text(encoding="utf-8"))
        for chunk in lines + spans:
            found += [(doc_id(doc), m) for m in re.findall(r"(?<![\w/.-])(ardm(?:\.\w+)+)", chunk)]
    return sorted(set(found))


@pytest.mark.parametrize("doc,name", dotted_names())
def test_dotted_name_resolves(doc, name):
    """`ardm.generation.loop.generate`: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            assert hasattr(obj, attr), f"{doc}: `{name}` does not exist ({attr!r} missing)"
            obj = getattr(obj, attr)
        return
    pytest.fail(f"{doc}: `{name}` names no module")


def repo_paths() -> list[tuple[str, str]]:
    """Paths into the package, tests, benchmarks and bundled checkpoints named in code spans/blocks."""
    pattern = r"(?<![\w./-])((?:ardm|tests|benchmarks|checkpoints)/[\w./-]*[\w/])"
    found = []
    for doc in DOCS:
        lines, spans = code_of(doc.read_text(encoding="utf-8"))
        for chunk in lines + spans:
            found += [(doc_id(doc), p) for p in re.findall(pattern, chunk)]
    return sorted(set(found))


@pytest.mark.parametrize("doc,path", repo_paths())
def test_repo_path_exists(doc, path):
    assert (ROOT / path).exists(), f"{doc} names `{path}`, which is not in the repository"


# -- (c) relative links --------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def target_path(doc: str, target: str) -> Path:
    path_part = target.partition("#")[0]
    return (ROOT / doc).parent.joinpath(path_part).resolve() if path_part else ROOT / doc


def repo_links() -> list[tuple[str, str]]:
    """(document, target) of every markdown link into the repository: not URLs, and not ../shared
    beside the clone (the SPEC), which the tests do not need."""
    found = []
    for doc in DOCS:
        text = FENCE.sub("", doc.read_text(encoding="utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z]+:", target) and ROOT in target_path(doc_id(doc), target).parents:
                found.append((doc_id(doc), target))
    return found


def test_readme_links_every_docs_page():
    linked = {target_path("README.md", t) for d, t in repo_links() if d == "README.md"}
    assert set((ROOT / "docs").glob("*.md")) <= linked


@pytest.mark.parametrize("doc,target", repo_links())
def test_relative_link_exists(doc, target):
    path, anchor = target_path(doc, target), target.partition("#")[2]
    assert path.exists(), f"{doc} links to {target}, which does not exist"
    if anchor and path.suffix == ".md":
        assert anchor in anchors(path), f"{doc} links to {target}: no such heading in {path.name}"
