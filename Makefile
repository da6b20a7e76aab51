# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install everything the project needs into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install sysdeps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the pinned CPU build on these machines (the same pin picks a CUDA build on a GPU box)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,export,bench]"
	touch $(STAMP)

install: $(STAMP)

# dicom3tools gives dciodvfy (DICOM conformance checks in the tests). Installed when we are root.
sysdeps:
	@command -v dciodvfy >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq dicom3tools >/dev/null; \
	  else echo "note: dciodvfy not found and not root; the conformance tests will be skipped"; fi; }

demo: $(STAMP)
	$(VENV)/bin/medgan-demo --output demo_out

test: $(STAMP) sysdeps
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache
