# lmrec: two commands on a fresh machine (see README.md)
#   make run    create .venv, install lmrec, run the main job: the LM ranker against the baselines on
#               ML-100K (P3; the archive is downloaded and checked when LMREC_DATA_DIR lacks it),
#               printed and written to reports/main (Markdown, JSON, PNG)
#   make test   create .venv if needed, install test extras, run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(if $(LMREC_DATA_DIR),$(LMREC_DATA_DIR),../shared/datasets)
TORCH := torch==2.13.0
# tests run in TEST_WORKERS processes of one torch thread each: the suite's models are tiny, so two
# one-thread workers finish in about half the time of one two-thread process on 2 cores
TEST_WORKERS ?= 2

.PHONY: setup browser run main-job-args test bench docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first: pip takes the local CPU wheel; installed later, a multi-GB CUDA build is downloaded
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	# lmrec with [test]: the test tools and every extra but [ray] (plots for make run's PNG included);
	# `pip install lmrec` alone is the light core (see DEVELOPERS.md)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# the main job's arguments to `lmrec compare` (tests/test_main_job.py runs exactly these); baseline
# settings are the ones chosen on P3 validation in benchmarks/results/baselines.md. Epoch budgets, chosen
# on P3 validation only: the first epoch whose validation NDCG@10 reached 99% of the best of a run with
# the full budget (LM ranker 18 of 60, best at 21: 0.1906 vs 0.1910; BPR-MF 36 of 150, its best epoch)
MAIN_JOB := --protocol ml100k-temporal --download \
  --models 'lm-ranker:{"preset": "sequential", "config": {"epochs": 18}};random;most-popular;itemknn:k=500;ease:lam=100;bpr-mf:{"dim": 64, "reg": 0.0001, "config": {"epochs": 36, "batch_size": 4096, "eval_every": 2, "patience": 4, "lr": 0.003, "n_negatives": 8}}' \
  --metrics ndcg@10 recall@10 ndcg@20 recall@20 hr@10 mrr@10 auc coverage@10 gini@10 tail@10 \
  --out reports/main

run: setup
	LMREC_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 $(VENV)/bin/lmrec compare $(MAIN_JOB)

main-job-args:
	$(info $(MAIN_JOB))@:

# the web page tests drive Debian's chromium through Playwright; install it when missing
browser:
	@command -v chromium >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

test: setup browser
	LMREC_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS)

bench: setup
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q wrk; }
	LMREC_DATA_DIR=$(DATA_DIR) $(PY) -m benchmarks.baselines
	LMREC_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 $(PY) -m benchmarks.lm_ranker
	LMREC_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 $(PY) -m benchmarks.serving
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.reloads
	LMREC_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 $(PY) -m benchmarks.main_job

# the documentation site (MkDocs + Material + mkdocstrings, from lmrec[docs]) into site/; --strict: a broken
# link or API reference fails the build, as in tests/test_docs.py
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) reports
