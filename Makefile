# xdplab: two commands for a learner, `sudo make lab` and `sudo make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8888

# what `make test` runs: every test under tests/ unless told otherwise (make test PYTEST_ARGS=...)
PYTEST_ARGS ?= tests

.PHONY: install install-tests lab test doctor clean bench bench-workshop image test-install test-docker

install:
	@bash env/install.sh

install-tests:
	@bash env/install.sh --tests

lab: install
	@$(PY) -m xdplab doctor || true
	@bash env/lab.sh $(HOST) $(PORT)

test: install-tests
	@$(PY) -m xdplab doctor --quiet
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

doctor: install
	@$(PY) -m xdplab doctor

bench: install
	$(PY) benchmarks/run.py

# How many participants a workshop machine holds (README, "Sizing a machine"): real rooms of each
# size in ROOMS, every participant running lesson 02 and a lab check at once (Docker; minutes)
ROOMS ?= 1,6
bench-workshop: install
	$(PY) benchmarks/workshop.py $(ROOMS)

# The Docker image (README, "Docker"); XDPLAB_CA_BUNDLE=/path/ca.pem behind a TLS-intercepting proxy
image:
	@bash env/image.sh

# Where learners run it (platforms/): a fresh minimal Debian 12, the Docker image. Heavy: CI runs
# them after `make test`; `make test` itself needs neither Docker nor VMs.
test-install: install-tests
	$(PY) -m pytest -p no:cacheprovider platforms/test_fresh_install.py

test-docker: install-tests
	$(PY) -m pytest -p no:cacheprovider platforms/test_docker.py

clean:
	-@[ -x $(PY) ] && $(PY) -m xdplab reap --all || true
	rm -rf $(VENV) .pytest_cache build *.egg-info xdplab/__pycache__ tests/__pycache__

# A workshop room (README, "Workshops"): JupyterHub on HOST:PORT (127.0.0.1:8888), one container
# per participant from the image (`make image` first), printed accounts, the instructor view.
# `sudo make workshop PARTICIPANTS=30` (or PARTICIPANTS=ana,ben); Ctrl-C stops it and all it started.
.PHONY: workshop
workshop:
	@HOST=$(HOST) PORT=$(PORT) bash env/workshop/run.sh

# The kernel matrix (platforms/kernels): Debian's own 5.10, 6.1 and 6.12 kernels booted with
# virtme-ng under qemu, each running the doctor, the kernel probes and `pytest -m kernel`; prints
# a table kernel x check. About 10 min per kernel under TCG. `make test-kernels KERNELS=6.1`
.PHONY: test-kernels
test-kernels:
	@bash env/install.sh --tests
	$(PY) platforms/kernels/run.py $(if $(KERNELS),--kernels $(KERNELS))

# The unit tier (tests/unit): pure functions (map codecs, error explanations, trace lines, report
# and chart text, random packets, probe decisions) in seconds, without root: `make test-unit`.
# Needs only the venv (`sudo make install-tests` once); `make test` runs these too.
.PHONY: test-unit
test-unit:
	@[ -x $(PY) ] || { echo "no $(PY): run 'sudo make install-tests' once"; exit 2; }
	$(PY) -m pytest -p no:cacheprovider -q tests/unit
