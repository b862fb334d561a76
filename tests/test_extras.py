"""The light core install: without any extra, lmrec imports, fits EASE and an LMRanker and saves a
report; a feature used without its extra stops with one line that names ``pip install 'lmrec[extra]'``.

"Without the extra" is a Python (a child, or this one for a feature) that cannot import the optional packages (the
same ModuleNotFoundError a missing package raises): ``sys.modules[name] = None`` for each.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

from lmrec.extras import EXTRAS, MissingExtra, needs, require

ROOT = Path(__file__).resolve().parents[1]
# top-level modules of every package that only an extra installs (and of what those pull in)
OPTIONAL = ("fastapi", "starlette", "uvicorn", "httptools", "pydantic", "pydantic_core", "prometheus_client", "faiss",
            "peft", "gguf", "matplotlib", "sentence_transformers", "tensorboard", "tensorboardX", "mlflow", "ray",
            "implicit", "cornac", "playwright", "httpx", "mkdocs")
# None in sys.modules is what "not installed" looks like to both `import` (ModuleNotFoundError) and
# importlib.util.find_spec (None): transformers probes peft, sentence_transformers, ... with find_spec, so a
# meta_path finder that raises would break the core where a missing package does not
REFUSE = f"""
import sys
BLOCKED = {sorted(OPTIONAL)!r}
sys.modules.update(dict.fromkeys(BLOCKED))
"""


def run_core(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python that cannot import any optional package."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", REFUSE + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def pyproject_extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_core_imports_fits_ease_and_an_lm_ranker_and_saves_a_report(tmp_path):
    result = run_core("""
        import pathlib, warnings
        import numpy as np
        for name in sorted(BLOCKED):
            try:
                __import__(name)
            except ImportError:
                continue
            raise SystemExit(f"the test's refusal let {name} through")
        import lmrec, lmrec.models, lmrec.data, lmrec.evaluation, lmrec.text, lmrec.training, lmrec.cli, lmrec.serving
        from lmrec.data.splits import random_split
        from lmrec.data.synthetic import generate
        data = generate(n_users=40, n_items=30, n_interactions=400, n_clusters=3, seed=1)
        users = data.user_ids[:3]  # raw ids
        ease = lmrec.EASE(lam=1.0).fit(data)
        ranker = lmrec.LMRanker(cache_dir=None, config=lmrec.TrainConfig(epochs=1, batch_size=64, progress=False))
        ranker.fit(data)
        for model in (ease, ranker):
            items, scores = model.recommend(users, k=5)
            assert items.shape == (3, 5) and np.isfinite(scores).all(), (type(model).__name__, items, scores)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = lmrec.compare([lmrec.MostPopular(), lmrec.EASE(lam=1.0)], random_split(data, seed=1),
                                   ["ndcg@5"])
            report.save("report")
        print("files:", sorted(p.name for p in pathlib.Path("report").iterdir()))
        print("warned:", [str(w.message) for w in caught if "report.png" in str(w.message)])
        """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'report.md'" in result.stdout and "'report.json'" in result.stdout
    assert "'report.png'" not in result.stdout
    assert "report.png skipped" in result.stdout and "pip install 'lmrec[plots]'" in result.stdout


def test_serve_without_the_serve_extra_names_it_in_one_line(tmp_path):
    result = run_core("""
        import runpy, sys
        from lmrec.extras import MissingExtra
        try:
            import lmrec.serving.app
        except MissingExtra as exc:
            print("app:", exc)
        sys.argv = ["lmrec", "serve", "store"]
        runpy.run_module("lmrec.cli", run_name="__main__")
        """, tmp_path)
    assert "app: lmrec serve needs fastapi" in result.stdout and "'lmrec[serve]'" in result.stdout, result.stderr
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = [x for x in result.stderr.splitlines() if x.startswith("lmrec: error:")]
    assert len(line) == 1 and "lmrec serve needs uvicorn" in line[0] and "pip install 'lmrec[serve]'" in line[0]


def test_an_hnsw_index_without_faiss_names_the_ann_extra(monkeypatch):
    from lmrec.serving.index import build_index

    monkeypatch.setitem(sys.modules, "faiss", None)
    vectors = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    assert build_index(vectors, "exact") is not None  # exact search is core
    with pytest.raises(MissingExtra, match=r"HNSW vector index .*needs faiss.*pip install 'lmrec\[ann\]'"):
        build_index(vectors, "hnsw")
    with pytest.raises(MissingExtra, match=r"pip install 'lmrec\[ann\]'"):
        build_index(vectors, "exact", precision="int8")


def test_lora_tuning_without_peft_names_the_tune_extra(monkeypatch, tmp_path, capsys):
    from lmrec.cli import main
    from lmrec.data.split_io import save_split
    from lmrec.data.splits import random_split
    from lmrec.data.synthetic import generate

    monkeypatch.setitem(sys.modules, "peft", None)
    split = save_split(random_split(generate(n_users=30, n_items=20, n_interactions=200, n_clusters=3, seed=2)), tmp_path / "s")
    code = main(["train", "lm-ranker", "--split", str(split), "--encoder", "minilm", "--tune", "lora",
                 "--epochs", "1", "--progress", "false", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "needs peft" in err and "pip install 'lmrec[tune]'" in err, err
    assert not (tmp_path / "m").exists()


def test_require_names_the_feature_the_package_and_the_extra():
    assert require("json", "ann", "anything").dumps([1]) == "[1]"
    with pytest.raises(MissingExtra, match=r"^the thing needs lmrec_absent_pkg, which lmrec's core install leaves "
                                           r"out: pip install 'lmrec\[tune\]' \(No module named 'lmrec_absent_pkg'\)$"):
        require("lmrec_absent_pkg.sub", "tune", "the thing")
    with pytest.raises(MissingExtra, match=r"the block needs lmrec_absent_pkg.*lmrec\[peers\]"):
        with needs("peers", "the block"):
            import lmrec_absent_pkg  # noqa: F401
    with pytest.raises(ValueError, match="unknown extra 'serving'"):
        require("json", "serving", "a typo in lmrec")


def test_every_extra_exists_in_pyproject_and_all_holds_them():
    declared = pyproject_extras()
    assert set(declared) - {"all", "test"} == set(EXTRAS)
    everything = re.fullmatch(r"lmrec\[([a-z,]+)\]", declared["all"][0])
    assert everything and set(everything.group(1).split(",")) == set(EXTRAS)
    # every `lmrec[...]` a message or a document names is declared
    texts = [*ROOT.joinpath("lmrec").rglob("*.py"), ROOT / "README.md", ROOT / "DEVELOPERS.md",
             *ROOT.joinpath("docs").rglob("*.md")]
    named = {(p.name, extra) for p in texts for group in re.findall(r"lmrec\[([a-z,]+)\]", p.read_text())
             for extra in group.split(",")}
    assert {e for _, e in named} >= {"serve", "ann", "tune"}
    unknown = sorted((f, e) for f, e in named if e not in declared)
    assert not unknown, f"extras named but not in pyproject.toml: {unknown}"


def _guarded(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``with needs(...)``, ``try: ... except ImportError`` or ``if TYPE_CHECKING``."""
    ok: set[int] = set()
    for node in ast.walk(tree):
        body: list[ast.stmt] = []
        if isinstance(node, ast.With) and any("needs(" in ast.unparse(i.context_expr) for i in node.items):
            body = node.body
        elif isinstance(node, ast.Try) and any("ImportError" in ast.unparse(h.type or ast.Name("")) for h in node.handlers):
            body = node.body
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            body = node.body
        ok |= {id(n) for stmt in body for n in ast.walk(stmt)}
    return ok


def test_optional_packages_are_imported_only_through_the_extras_helpers():
    bare = []
    for path in ROOT.joinpath("lmrec").rglob("*.py"):
        tree = ast.parse(path.read_text())
        ok = _guarded(tree)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[0] in OPTIONAL for n in names) and id(node) not in ok:
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bare, "import these through lmrec.extras.require or inside `with needs(...)`:\n" + "\n".join(bare)
