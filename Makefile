# Quick start: `make demo` runs the main job, `make test` runs every test.
# Both create .venv and install exotrace into it first; nothing else is needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv mutate serve browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/exotrace demo run --out demo-output

# The browser tests drive Debian's chromium (Playwright's own download is not available).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1; } || \
	  echo "warning: chromium is not installed and cannot be installed here; browser tests will fail"

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# `make serve`: the demo database (built by `make demo` if missing) in a browser.
DEMO_DB := demo-output/exotrace-demo.db
PORT ?= 8000
serve: $(STAMP)
	test -f $(DEMO_DB) || $(BIN)/exotrace demo run --out demo-output
	@echo "exotrace: open http://127.0.0.1:$(PORT)/ and sign in as admin1, analyst1, reviewer1, qa1 or clinician1 (password: demo)"
	EXOTRACE_DATABASE_URL=sqlite:///$(CURDIR)/$(DEMO_DB) $(BIN)/exotrace serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

# Mutation testing of the safety logic ([tool.mutmut] in pyproject.toml): one module at a time,
# only the genealogy/expiry/consent rules of _services_lot; CPU heavy (niced, two workers),
# not part of `make test`. Results are kept in mutants/: a rerun resumes where one stopped.
MUTATE_MODULES ?= exotrace.clinic._dose.* exotrace.clinic._eligibility.* \
	exotrace.records._auth.* exotrace.quality._release.* \
	exotrace.records._services_lot.x_check_* exotrace.records._services_lot.x__child_expiry* \
	exotrace.records._services_lot.x__expiry_bound*
mutate: $(STAMP)
	$(BIN)/pip install --quiet -e '.[mutate]'
	for m in $(MUTATE_MODULES); do nice -n 15 $(BIN)/mutmut run --max-children 2 "$$m" || exit 1; done
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) demo-output mutants .pytest_cache build *.egg-info src/*.egg-info
