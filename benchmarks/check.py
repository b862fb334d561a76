"""Build every model of every benchmark spec and script, untrained, and validate its parameters.

A quick check (seconds, no data, no training) that the specs (``benchmarks/specs/*.toml``,
``examples/study.toml``) and the scripts' own builders still speak the current model APIs: each
model is constructed the way its runner constructs it (``lmrec.study.cells.Context.model`` for a
spec, the script's builder for a script) and its parts and TrainConfig are validated as ``fit``
validates them. It also confirms that every planned cell of the fine-tuning grid is stored.

    .venv/bin/python -m benchmarks.check            # exits 1 and names each model that fails
"""
from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from lmrec.errors import ConfigError
from lmrec.models import Recommender
from lmrec.study.cells import Context
from lmrec.study.plan import plan
from lmrec.study.spec import StudySpec, load_spec
from lmrec.study.store import cell_key

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "benchmarks" / "specs").glob("*.toml")) + [ROOT / "examples" / "study.toml"]
Build = tuple[str, Callable[[], Recommender]]  # (what it is, how to build it)


def check_model(model: Recommender) -> None:
    """Validate ``model``'s parameters without data: the check ``fit`` starts with."""
    model.check_params()


def spec_builds(spec: StudySpec) -> Iterator[Build]:
    """Every (model, protocol) of a spec's sections and grids of the recipe "fit", built as its cells build them."""
    ctx = Context(spec, Path(tempfile.gettempdir()) / "lmrec-benchmarks-check")
    seed = spec.seeds[0]
    uses: list[tuple[str, str | None]] = []
    for section in (spec.fairness, spec.explanations, spec.robustness):
        if section is not None:
            uses += [(name, None) for name in section.models]
    uses += [(name, p) for g in spec.grid.values() if g.recipe == "fit" for p in g.protocols for name in g.models]
    for name, protocol in dict.fromkeys(uses):
        yield f"{spec.path.name} {name} ({protocol or 'any protocol'})", \
            lambda n=name, p=protocol: ctx.model(n, seed, "check", protocol=p)
    if spec.losses:
        sec = spec.losses
        for protocol in sec.protocols:
            for loss in sec.losses:
                name, _, sampler = loss.partition(":")
                train = {**sec.config.get(protocol, {}), **({"sampler": sampler} if sampler else {})}
                yield f"{spec.path.name} losses {loss} ({protocol})", \
                    lambda n=name, t=train: ctx.model(sec.model, seed, "check", t, loss=n)


def script_builds() -> Iterator[Build]:
    """The models of the benchmark scripts, from each script's own builders."""
    from benchmarks import efficiency, finetune, lm_ranker, reloads, scale, serving
    from lmrec.models.lm import USER_TOWERS

    spec = load_spec(finetune.SPEC)
    for gname, grid in spec.grid.items():
        for code in grid.protocols:
            for name in grid.models:
                encoder, tuning = finetune.model_cell(name)
                label = f"finetune {gname} {name} ({code})"
                if tuning == "-":
                    yield label, lambda c=code, n=name: finetune.baseline_model(c, n)
                elif tuning == finetune.BLEND:
                    yield label, lambda c=code, e=encoder: finetune.blend_model(c, finetune.ranker(c, e, "frozen", 2026))
                else:
                    yield label, lambda c=code, e=encoder, t=tuning: finetune.ranker(c, e, t, 2026)
    def cold_candidate(name: str) -> Recommender:
        finetune.SEARCH["cold"] = name  # as finetune.cold_candidate sets it
        try:
            return finetune.ranker("P4", "minilm", "frozen", 2026)
        finally:
            finetune.SEARCH.pop("cold")

    for candidate in finetune.COLD_CANDIDATES:
        yield f"finetune search-cold {candidate!r}", lambda c=candidate: cold_candidate(c)
    for loss in lm_ranker.LOSSES:
        for tower in USER_TOWERS:
            yield f"lm_ranker {loss} {tower}", lambda lo=loss, t=tower: lm_ranker.model(lo, t, 2026)
    for option in efficiency.OPTIONS:
        yield f"efficiency {option!r}", lambda o=option: efficiency.option_model(o, "P3")
    yield "serving", lambda: serving.serving_model(3)
    yield "reloads", reloads.tiny_model
    for name in ("bpr-mf", "lm-ranker"):
        yield f"scale growth {name}", lambda n=name: scale.growth_model(n)


def missing_finetune_cells() -> list[dict[str, object]]:
    """The planned cells of benchmarks/specs/finetune.toml that the store lacks (their keys come from the
    cells' coordinates: protocol, encoder, tuning, seed, search)."""
    from benchmarks import finetune

    store = finetune.store()
    cells = plan(load_spec(finetune.SPEC), {"finetune": finetune.RECIPE})
    return [c.params for c in cells if store.get(cell_key(c.section, c.params)) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    builds = [b for path in SPECS for b in spec_builds(load_spec(path))] + list(script_builds())
    failed = []
    for label, make in builds:
        try:
            check_model(make())
        except (ConfigError, TypeError, ValueError) as exc:
            failed.append(f"{label}: {exc}")
    print(f"{len(builds) - len(failed)} of {len(builds)} models build and validate")
    for line in failed:
        print(f"  FAILED {line}")
    missing = missing_finetune_cells()
    print(f"finetune grid: {len(missing)} planned cells missing from the store")
    for params in missing:
        print(f"  missing {params}")
    return 1 if failed or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
