"""The README and the pages under docs/: examples run, links and paths resolve."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The pages a reader follows from the README; generated tables and reports
# under docs/results/ are checked too, since their links point at figures.
PAGES = sorted([README, ROOT / "BUILD_NOTES.md", *(ROOT / "docs").rglob("*.md")])
# Pages written by hand, whose `paths` under the repository's own folders and
# whose scripts must exist (files a run creates, under runs/ or data/, are not
# checked).
WRITTEN_PAGES = [README, ROOT / "BUILD_NOTES.md", *sorted((ROOT / "docs").glob("*.md")),
                 ROOT / "docs" / "results" / "README.md",
                 ROOT / "docs" / "results" / "findings.md"]
REPOSITORY_FOLDERS = ("docs/", "tat_keras/", "recipes/", "tflite/", "tests/", ".ci/")

FENCE = re.compile(r"^```[^\n]*\n.*?^```[ \t]*$", flags=re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`([^`\s]+)`")
SCRIPT = re.compile(r"\b((?:recipes|tflite)/[\w/]+\.(?:py|sh|flags))\b")
MARKER = re.compile(r"<!-- (/?)([\w-]+) -->")


def _name(page):
    return str(page.relative_to(ROOT))


def _prose(text):
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def heading_anchors(text):
    """GitHub's anchors for the Markdown headings of `text`.

    Args:
        text: str. A Markdown page.

    >>> sorted(heading_anchors("# A page\\n## Per-user calibration (`k` dots)\\n"))
    ['a-page', 'per-user-calibration-k-dots']
    """
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _prose(text), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_heading_anchors_follow_github():
    text = "# Results: TAT and DwO\n```\n# not a heading\n```\n## Results: TAT and DwO\n"
    assert heading_anchors(text) == {"results-tat-and-dwo", "results-tat-and-dwo-1"}


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_links_resolve(page):
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: outside the repository
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved})")
        elif anchor and resolved.suffix == ".md" and (
                anchor not in heading_anchors(resolved.read_text())):
            broken.append(f"{target} (no heading #{anchor} in {_name(resolved)})")
    assert not broken, f"{_name(page)} has broken links; fix them: {broken}"


@pytest.mark.parametrize("page", WRITTEN_PAGES, ids=_name)
def test_named_repository_paths_exist(page):
    text = page.read_text()
    named = [p for p in CODE_PATH.findall(_prose(text)) if p.startswith(REPOSITORY_FOLDERS)]
    named += SCRIPT.findall(text)
    placeholder = re.compile(r"[A-Z]{3}|[*<>{}$]")  # recipes/configs/NAME.flags
    missing = sorted({p for p in named
                      if not placeholder.search(p) and not (ROOT / p.rstrip("/")).exists()})
    assert not missing, f"{_name(page)} names files that do not exist; fix the paths: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_marked_blocks_are_closed(page):
    open_blocks = []
    for closing, name in MARKER.findall(page.read_text()):
        if not closing:
            open_blocks.append(name)
        else:
            assert open_blocks and open_blocks.pop() == name, (
                f"{_name(page)}: <!-- /{name} --> closes no <!-- {name} -->")
    assert not open_blocks, f"{_name(page)}: close {open_blocks} with <!-- /NAME -->"


def test_readme_marks_the_demo_summary():
    text = README.read_text()
    assert "<!-- demo-summary -->" in text and "<!-- /demo-summary -->" in text


def test_readme_stays_short():
    lines = len(README.read_text().splitlines())
    assert lines <= 260, (f"README.md has {lines} lines; keep it near 250 and move "
                          "reference text to a page under docs/")


# BUILD_NOTES.md's examples read files that only a long run makes.
EXAMPLE_PAGES = [p for p in WRITTEN_PAGES
                 if p.name != "BUILD_NOTES.md" and "```python" in p.read_text()]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=_name)
def test_python_examples_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(page), "exec"), {"__name__": "docs"})


def test_readme_has_a_python_example():
    assert "```python" in README.read_text(), "README.md has no Python example"


def test_readme_names_the_two_commands_that_ci_runs():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
