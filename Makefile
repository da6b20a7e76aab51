# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install everything the project needs into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint install sysdeps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the pinned CPU build on these machines (the same pin picks a CUDA build on a GPU box)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,export,bench,baselines,pacs]"
	touch $(STAMP)

install: $(STAMP)

# Debian tools the tests use, installed when we are root: dicom3tools gives dciodvfy (DICOM conformance
# checks); chromium renders the HTML reports headless; orthanc + orthanc-dicomweb serve the PACS tests.
# Tests that need a missing tool skip with a reason.
SYSDEPS := dciodvfy:dicom3tools chromium:chromium Orthanc:orthanc
# Debian packages with no command of their own (Orthanc's DICOMweb plugin), checked with dpkg -s
SYSDEPS_PKGS := orthanc-dicomweb
sysdeps:
	@missing=""; for pair in $(SYSDEPS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	for pkg in $(SYSDEPS_PKGS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: not root; missing Debian packages:$$missing (the tests that need them will be skipped)"; fi; fi

demo: $(STAMP)
	$(VENV)/bin/medgan-demo --output demo_out

# the suite without the tests marked slow (Lightning training runs): a few minutes on 2 cores
test: $(STAMP) sysdeps
	$(PY) -m pytest -q -m "not slow"

# the slow ones (CI runs both)
test-slow: $(STAMP) sysdeps
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache
