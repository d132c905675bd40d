# multiplan — the two commands:  make run   (the app on the sample county)
#                                 make test  (the whole test suite)
# Both first run scripts/bootstrap.sh, which installs what is missing and is fast when nothing is.

SHELL := /bin/bash
PY := .venv/bin/python
BOOTSTRAP := scripts/bootstrap.sh
SAMPLE := sample_data/changxing
PYTEST_ARGS ?=

.PHONY: help run test lint screenshot sample bootstrap

help:
	@echo "make run         open the desktop app on the sample county project ($(SAMPLE)/)"
	@echo "make test        run the whole test suite (headless, QT_QPA_PLATFORM=offscreen)"
	@echo "make lint        ruff check"
	@echo "make screenshot  start the app under Xvfb and save screenshots/main_window.png (and _en)"
	@echo "make sample      build the sample project (python sample_data/build_sample.py)"
	@echo "make bootstrap   only install what is missing (system packages, .venv)"

bootstrap:
	@$(BOOTSTRAP) all

define need_sample
	@if [ ! -e $(SAMPLE)/plan.gpkg ]; then \
	  echo "The sample project $(SAMPLE)/ is missing (no $(SAMPLE)/plan.gpkg)." >&2; \
	  echo "Build it with:  make sample    (runs: $(PY) sample_data/build_sample.py)" >&2; \
	  exit 2; \
	fi
endef

run:
	@$(BOOTSTRAP) run
	$(need_sample)
	@if [ -z "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}$${QT_QPA_PLATFORM:-}" ]; then \
	  echo "make run: no display (DISPLAY/WAYLAND_DISPLAY unset). On a headless machine use" >&2; \
	  echo "  make screenshot   (the app under Xvfb, saved to screenshots/main_window.png)" >&2; \
	  exit 2; \
	fi
	$(PY) -m multiplan.gui.app $(SAMPLE)

# pytest's exit code is make's: 5 ("no tests collected") stays a failure, and says so.
test:
	@$(BOOTSTRAP) test
	@QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing" >&2; fi; \
	exit $$rc

lint:
	@$(BOOTSTRAP) lint
	$(PY) -m ruff check .

screenshot:
	@$(BOOTSTRAP) screenshot
	$(need_sample)
	$(PY) scripts/screenshot.py $(SAMPLE) screenshots/main_window.png
	$(PY) scripts/screenshot.py $(SAMPLE) screenshots/main_window_en.png --lang en

sample:
	@$(BOOTSTRAP) sample
	@if [ ! -f sample_data/build_sample.py ]; then \
	  echo "sample_data/build_sample.py does not exist yet: the sample builder is not in this checkout." >&2; \
	  exit 2; \
	fi
	$(PY) sample_data/build_sample.py
