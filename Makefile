# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`. Nothing is installed by hand.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PATH, else the one pip installs for this Python.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY := .venv/bin/python
# Task packages, in the order they were built; the targets below run those that have the script.
TASKS := speaker_id pose_smoothing gesture_detection emotion action_recognition video_gestures

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export YOLO_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export TORCH_HOME := $(CURDIR)/.cache/torch
export HF_HOME := $(CURDIR)/.cache/huggingface
export YOLO_CONFIG_DIR := $(CURDIR)/.cache/ultralytics
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1

.PHONY: help env demo test test-fast test-blender bench weights requirements clean
help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

env: .venv/.synced  ## create or update the virtual environment (uv sync)

demo: env  ## generate the demo data and run every task end to end (outputs under runs/demo/)
	@for task in $(TASKS); do \
	  if [ -f $$task/demo.py ]; then echo "=== demo: $$task"; $(PY) -m $$task.demo || exit 1; fi; \
	done
	@echo "Demo outputs are under runs/demo/"

test: env  ## run the whole test suite (real-data tests skip when ../shared is absent)
	$(PY) -m pytest

test-fast: env  ## unit tests only: skip the slow training and real-data tests
	$(PY) -m pytest -m "not slow and not real_data"

# Blender's Python module (bpy, ~360 MB) in its own environment, from the locked `blender` group of pyproject.toml;
# pose_smoothing's Blender tests (and its bench's Blender keys) find it there, or at $POSE_BLENDER_PYTHON.
BLENDER_ENV := .cache/blender
test-blender: env  ## install Blender (bpy) into .cache/blender and run the BVH round trip through Blender's importer
	@test -x $(BLENDER_ENV)/bin/python || $(UV) venv --python 3.11 $(BLENDER_ENV)
	$(UV) export --frozen --only-group blender --no-hashes --no-emit-project --quiet -o $(BLENDER_ENV)/requirements.txt
	$(UV) pip install --python $(BLENDER_ENV)/bin/python -r $(BLENDER_ENV)/requirements.txt
	POSE_BLENDER_PYTHON=$(CURDIR)/$(BLENDER_ENV)/bin/python $(PY) -m pytest tests/pose_smoothing/test_pose_smoothing_bvh.py -rs

bench: env  ## real-data benchmarks: results/<task>.json and the README tables
	@for task in $(TASKS); do \
	  if [ -f $$task/bench.py ]; then echo "=== bench: $$task"; $(PY) -m $$task.bench || exit 1; fi; \
	done

weights: env  ## train each task's default model on ../shared/data into weights/<task>/ + weights/MANIFEST.json (reuses runs/)
	$(PY) -m core.release

requirements: uv.lock  ## export requirements.txt from the lock, for pip users
	$(UV) export --frozen --no-hashes --no-emit-project --format requirements-txt -o requirements.txt

clean:  ## remove runs and caches (keeps the environment)
	rm -rf runs .cache .pytest_cache
