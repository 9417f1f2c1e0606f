# Two commands: `make demo` runs the whole platform on a laptop, `make test` runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Tests talk to real services; override these to point elsewhere (or run `make test-sqlite`).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/verdict
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install demo test test-sqlite lint bench-train bench-al bench-loop bench-serving bench-feedback bench-quality bench-scale bench-data gpu-check deploy-test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	VERDICT_MODE=demo $(PY) manage.py migrate --noinput
	VERDICT_MODE=demo $(PY) manage.py load_demo
	VERDICT_MODE=demo $(PY) manage.py run_demo

test: install
	VERDICT_MODE=test DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest $(PYTEST_ARGS)

test-sqlite: install
	VERDICT_MODE=test DATABASE_URL= REDIS_URL= $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks (bench/README.md): they read ../shared/data in place and write bench/results/.
bench-train: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/train_vs_trl.py --seeds 0 1 2 --max-rankings 240

bench-al: install
	$(PY) bench/active_learning_sim.py --seeds 20

# Does active learning help? The fine-tuned simulation (MiniLM fine-tuned at every checkpoint, split by prompt, three
# datasets and a distribution shift; its CPU setting), then the closed-loop replay through the running platform with
# the default policy (PostgreSQL and Redis as for `make test`; its own database `verdict_replay`). Hours on 2 cores:
# bench/README.md. On a GPU machine: bench/active_learning_finetuned.py --setting gpu (DEVELOPERS.md).
bench-loop: install
	$(PY) bench/active_learning_finetuned.py --scenarios pandalm llmfao_shift
	$(PY) bench/loop_replay.py --dataset pandalm --seeds 0 1 2 3 --retrain-every 100

# Reward serving: throughput and latency through the reward server vs the same model in process (batches 1/16/64),
# and a closed RL loop (TRL GRPO on Verdict's reward, captured groups ranked by simulated raters from LLMFAO's votes,
# retrain, hot-swap). PostgreSQL and Redis as for `make test`; its own database `verdict_serving_bench`. ~15 min.
bench-serving: install
	$(PY) bench/serving_bench.py

# AI judges on LLMFAO: GPT-4's and GPT-3.5's recorded verdicts served by a local OpenAI-compatible server; judge
# calibration, hybrid routing, failure drills (bench/README.md). Needs PostgreSQL.
bench-feedback: install
	$(PY) bench/feedback_bench.py --seeds 3

# Rater quality on LLMFAO's crowd votes: held-out vote prediction, spammers, dynamic overlap, and the speed of a
# 100,000-ranking fit (bench/README.md). Needs crowd-kit for the library reference.
bench-quality: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/quality_bench.py --seeds 5

# Training at scale: ours vs TRL (checkpointing off) on an encoder and a decoder, K=2 (HH) and K=4 (LLMFAO), and
# our memory against K × length (bench/README.md). ~25 min on 2 cores.
bench-scale: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/scale_bench.py

# The data path at production scale: rater loop under load (50/200 raters, saturation), import of 1,000,000 tasks,
# export of 1,000,000 TRL pairs, command start-up and a 3,000,000-ranking project's pages, against the commit before
# issue 12 side by side (bench/README.md). PostgreSQL and Redis as for `make test`; ~35 min; run it alone.
bench-data: install
	$(PY) bench/data_bench.py

# On a machine with a GPU: decoder bf16 with and without LoRA, a 2-process torchrun job, kill-and-resume.
gpu-check: install
	$(PY) bench/gpu_scale_check.py --out bench/results/gpu_scale_check.json

# The Compose deployment, built and used end to end with host networking (deploy/README.md, "The deploy test"):
# images from Debian's packages, the stack, the public API, a killed worker, backup and restore. Needs root and
# Docker (installed from Debian if missing); ~15 min. Not part of `make test`: run it before a release and whenever
# deploy/ changes.
deploy-test:
	$(PYTHON) deploy/test/deploy_test.py $(DEPLOY_TEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
