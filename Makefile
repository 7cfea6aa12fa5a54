# Two commands on a fresh Debian machine with Python 3.11:
#   make run    set up .venv, migrate, load the demo data, start the web server and the job worker
#   make test   set up .venv with the test tools and run the whole test suite
#
# Every target is idempotent: .venv is created once, and requirements are
# re-installed only when a requirements file is newer than its stamp file.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where `make run` listens; the printed address follows it.
ADDRESS ?= 127.0.0.1:8000
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-x tests/test_seed_demo.py" or PYTEST_ARGS="-n auto".
PYTEST_ARGS ?= -n 2
# apt-get needs root; use sudo when we are not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: run test install install-dev browser-deps lifecycle-doc check-lifecycle-doc clean bench-sweep

run: $(VENV)/.installed
	bin/run-dev $(ADDRESS)

test: $(VENV)/.installed-dev browser-deps node_modules/.package-lock.json
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests; that counts as a failure." >&2; fi; \
	exit $$status

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version))." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { \
		echo "python3 -m venv failed; on Debian it needs the python3-venv package." >&2; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# requirements-dev.txt includes requirements.txt, so it also satisfies `run`.
$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

# The browser tests drive Debian's Chromium (never `playwright install`); CJK fonts render the Chinese pages.
browser-deps:
	@command -v chromium >/dev/null && { [ ! -x /usr/bin/dpkg-query ] || dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed"; } || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium fonts-noto-cjk; }

# axe-core (pinned in package-lock.json) for the accessibility check of the browser tests; npm ci
# again only when the lock file is newer than what npm last installed.
node_modules/.package-lock.json: package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y npm; }
	npm ci --no-audit --no-fund

# docs/lifecycle.md is generated from the state machine (tests fail when it is stale),
# against a freshly migrated throw-away database so that it shows the roles as the migrations define them.
lifecycle-doc: $(VENV)/.installed
	env -u DATABASE_URL SQLITE_PATH=$$(mktemp -u /tmp/lifecycle-doc-XXXXXX.sqlite3) sh -c \
		'$(BIN)/python manage.py migrate --noinput -v0 && $(BIN)/python manage.py lifecycle_doc; s=$$?; rm -f $$SQLITE_PATH*; exit $$s'

check-lifecycle-doc: $(VENV)/.installed
	env -u DATABASE_URL SQLITE_PATH=$$(mktemp -u /tmp/lifecycle-doc-XXXXXX.sqlite3) sh -c \
		'$(BIN)/python manage.py migrate --noinput -v0 && $(BIN)/python manage.py lifecycle_doc --check; s=$$?; rm -f $$SQLITE_PATH*; exit $$s'

# Removes the virtualenv only; the database in var/ stays.
clean:
	rm -rf $(VENV)

# Benchmarks print figures (see bench/README.md); DATABASE_URL picks PostgreSQL.
bench-sweep: $(VENV)/.installed
	$(BIN)/python bench/sweep.py
