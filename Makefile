# xdplab: two commands for a learner, `sudo make lab` and `sudo make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8888

.PHONY: install lab test doctor clean bench

install:
	@bash env/install.sh

lab: install
	@$(PY) -m xdplab doctor || true
	@bash env/lab.sh $(HOST) $(PORT)

test: install
	@$(PY) -m xdplab doctor --quiet
	$(PY) -m pytest -p no:cacheprovider tests

doctor: install
	@$(PY) -m xdplab doctor

bench: install
	$(PY) benchmarks/run.py

clean:
	-@[ -x $(PY) ] && $(PY) -m xdplab reap --all || true
	rm -rf $(VENV) .pytest_cache build *.egg-info xdplab/__pycache__ tests/__pycache__
