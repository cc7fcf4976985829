# Two commands set everything up from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

.PHONY: install run test lint format lock bench messages clean chromium \
	migrate seed shell verify-audit audit-head check-deploy

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# A development .env (DEBUG=1, a key of its own) so that `python manage.py ...` typed in the
# checkout works like the commands below; an existing .env is never touched.
.env:
	sed -e 's/^DEBUG=.*/DEBUG=1/' \
		-e "s/^# SECRET_KEY=.*/SECRET_KEY=dev-$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')/" \
		.env.example > .env
	@echo "Wrote a development .env (DEBUG=1); edit it or delete it to start again."

run: install .env
	mkdir -p var
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	# Ctrl-C (exit status 130) is how it is meant to stop, not an error.
	DEBUG=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --procfile Procfile.dev start \
		|| test $$? -eq 130

# Shortcuts for the commands of the README, with the settings of .env.
migrate: install .env
	$(BIN)/python manage.py migrate
seed: install .env
	$(BIN)/python manage.py seed_demo
shell: install .env
	$(BIN)/python manage.py shell
verify-audit: install .env
	$(BIN)/python manage.py verify_audit_log
audit-head: install .env
	$(BIN)/python manage.py audit_head --json
check-deploy: install .env
	$(BIN)/python manage.py check --deploy

chromium:
	@command -v chromium >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium and openssl for the browser and TLS tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium openssl; }

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	HELPDESK_TESTING=1 $(BIN)/mypy .
	HELPDESK_TESTING=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# No index URLs or local wheel folders of the machine that locks; the dev file installs both.
# Hashes: `make install` then refuses any file that is not the one locked.
LOCK := $(BIN)/pip-compile --quiet --strip-extras --no-header --no-annotate \
	--no-emit-index-url --no-emit-find-links --generate-hashes --allow-unsafe
lock:
	$(LOCK) --output-file requirements.txt requirements.in
	sed -i "1i # Pinned from requirements.in; regenerate with 'make lock'." requirements.txt
	$(LOCK) --output-file requirements-dev.txt requirements-dev.in
	sed -i "1i # Pinned from requirements-dev.in; regenerate with 'make lock'.\n-r requirements.txt" \
		requirements-dev.txt

messages: install
	DEBUG=1 $(BIN)/python manage.py makemessages --locale ms --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --ignore 'bench/*' --no-obsolete
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore '.venv/*'

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf var/broker var/mail var/*.sqlite3 var/celerybeat-schedule* var/gw[0-9]*
