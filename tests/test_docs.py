"""The documentation: the MkDocs site builds with --strict, every public symbol has a docstring and a
place in the API reference, the README stays short with working links, and the Python blocks of the
README and the guides run as written (tests/markdown_blocks.py reads them; docs/guides/own-data.md
is run with its data by tests/cli/test_data.py)."""
from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.markdown_blocks import ROOT, blocks, run_python, section_blocks

griffe = pytest.importorskip("griffe", reason="the docs tools come with lmrec[docs]")
PACKAGES = ["lmrec", "lmrec.models", "lmrec.data", "lmrec.text", "lmrec.training", "lmrec.evaluation",
            "lmrec.serving"]
# pages whose blocks another test runs, with the data they need
RUN_ELSEWHERE = {"docs/guides/own-data.md": "tests/cli/test_data.py::test_own_data_walkthrough_runs_as_written"}
README_LIMIT = 15_000


def _pages() -> list[str]:
    docs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
    return ["README.md", *docs]


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_site_builds_strict_with_results_and_api(site):
    for page in ["index.html", "protocols/index.html", "guides/serving/index.html", "api/models/index.html",
                 "results/index.html"]:
        assert (site / page).is_file(), page
    committed = sorted(p for p in (ROOT / "benchmarks" / "results").glob("*.md"))
    assert committed and all((site / "results" / p.stem / "index.html").is_file() for p in committed)


def test_strict_build_fails_on_a_broken_link_or_reference(tmp_path):
    """The same site with one broken link and one unresolved API reference must not build."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    for shared in ("lmrec", "benchmarks"):
        (copy / shared).symlink_to(ROOT / shared)
    page = copy / "docs" / "protocols.md"
    page.write_text(page.read_text() + "\nSee [a page](no-such-page.md) and [`lmrec.NoSuchThing`][].\n")
    done = _build(copy / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    log = done.stdout + done.stderr
    assert "no-such-page.md" in log and "lmrec.NoSuchThing" in log, log[-3000:]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_symbols_have_docstrings_and_api_entries(package, site):
    names = importlib.import_module(package).__all__
    assert names, f"{package} declares no __all__"
    loaded = griffe.load(package, search_paths=[str(ROOT)], resolve_aliases=False)
    html = " ".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    anchors = set(re.findall(r'id="([^"]+)"', html))
    undocumented = [n for n in names if not (loaded[n].docstring and loaded[n].docstring.value.strip())]
    assert not undocumented, f"{package}: public names without a docstring: {undocumented}"
    missing = [n for n in names if f"{package}.{n}" not in anchors]
    assert not missing, f"{package}: public names missing from the API reference (docs/api/): {missing}"


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) <= README_LIMIT, f"README.md has {len(readme)} characters; the limit is {README_LIMIT}"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local and not [link for link in local if not (ROOT / link).exists()]


def test_blocks_have_languages_and_no_run_markers_say_why():
    for page in _pages():
        found = blocks(page)
        assert all(b.lang for b in found), f"{page}: a code block without a language"
        markers = (ROOT / page).read_text(encoding="utf-8").count("<!-- no-run")
        assert markers == sum(b.no_run is not None for b in found), \
            f"{page}: each '<!-- no-run: reason -->' must be the line just before a code fence"
    quick = [b for b in section_blocks("README.md", "## Quick start") if b.lang == "python"]
    assert quick and all(b.no_run is None for b in quick), "the README's quick start must run"


def test_site_quick_start_is_the_readme_one():
    readme = [b.code for b in section_blocks("README.md", "## Quick start") if b.lang == "python"]
    assert readme and readme == [b.code for b in section_blocks("docs/index.md", "## Quick start") if b.lang == "python"]


def _runnable(page: str) -> list:
    """A page's Python blocks to run: not marked no-run, and not a copy of one of the README's (the
    site's copy of the quick start is not run twice)."""
    readme = {b.code for b in blocks("README.md")} if page != "README.md" else set()
    return [b for b in blocks(page) if b.lang == "python" and b.no_run is None and b.code not in readme]


def test_pages_with_python_run_it():
    """The pages below hold runnable Python; a page losing all of it (a guide turned to prose) is noticed."""
    assert {"README.md"} <= {p for p in _pages() if _runnable(p)}


@pytest.mark.parametrize("page", [p for p in _pages() if p not in RUN_ELSEWHERE and _runnable(p)])
def test_python_blocks_run_as_written(page, data_dir, tmp_path, monkeypatch):
    """Each page's runnable Python blocks in one scope."""
    runnable = _runnable(page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LMREC_DATA_DIR", str(data_dir))
    run_python(runnable)
