# wardprobe: the two commands a newcomer needs are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Debian packages the agent, the reference server and the emulated city use;
# Pango and DejaVu for the report's PDF (WeasyPrint), poppler-utils to read it back;
# Debian's headless Chromium for the tests that load the maps and the API offline;
# nftables for the routed city's home routers (NAT) and its black-hole path;
# PostgreSQL for the lake's catalogue in the tests and the demo's scale mode
# (emulation/postgres.py runs a throwaway cluster).
DEB_PKGS := iperf3 libiperf0 iproute2 procps iputils-ping nftables \
	libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils \
	chromium-headless-shell postgresql

# Only for `make deb` (lintian checks the packages) and `make arm64-proof` (an
# arm64 Debian root under qemu-user), not for `make test`.
DEB_BUILD_PKGS := lintian
ARM64_PROOF_PKGS := debootstrap qemu-user-static binfmt-support dpkg-dev
# The probe box's package is built for these Debian architectures.
DEB_ARCHES ?= arm64 amd64 armhf

.PHONY: setup demo demo-scale test lint proto proto-check bench clean deb arm64-proof arm64-tools

setup: $(STAMP)

$(STAMP): pyproject.toml packaging/deb/requirements.txt
	@if [ "$$(id -u)" = 0 ] && ! dpkg -s $(DEB_PKGS) >/dev/null 2>&1; then \
		echo ">> installing Debian packages: $(DEB_PKGS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi
	@command -v iperf3 >/dev/null || echo "!! iperf3 is missing: install Debian's iperf3 (apt-get install iperf3)"
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -r packaging/deb/requirements.txt
	@touch $(STAMP)

## The main job: an emulated city measured end to end, results in demo-out/.
demo: setup
	$(PY) -m emulation.demo --out demo-out

## An extra: the scale mode, two aggregator replicas on one lake (a throwaway
## PostgreSQL catalogue), one killed mid-way, results in demo-scale-out/.
demo-scale: setup
	$(PY) -m emulation.demo_scale --out demo-scale-out

## The test suite (what CI runs): generated code fresh, ruff and mypy clean, pytest
## on two workers, each test file on one of them (a file's fixtures are shared by
## its tests); the slowest tests are listed at the end.
test: setup arm64-tools proto-check lint
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

## Regenerate wardprobe/v1 from proto/.
proto: setup
	PYTHON=$(PY) scripts/gen_proto.sh

## Fail when the checked-in generated code is stale.
proto-check: setup
	@tmp=$$(mktemp -d) && PYTHON=$(PY) scripts/gen_proto.sh $$tmp >/dev/null && \
	diff -r -q -x __pycache__ $$tmp/wardprobe/v1 wardprobe/v1 && rm -rf $$tmp && \
	echo "generated code is up to date"

## The Debian packages, each with its Python dependencies inside, built for
## its architecture: dist/deb/wardprobe-agent_<version>_<arch>.deb (the probe
## box) for DEB_ARCHES, and wardprobe-central_<version>_amd64.deb (aggregator
## and reference server) when amd64 is among them.
deb: setup
	@if [ "$$(id -u)" = 0 ] && ! dpkg -s $(DEB_BUILD_PKGS) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_BUILD_PKGS) >/dev/null; \
	fi
	$(PY) packaging/deb/make_deb.py $(foreach arch,$(DEB_ARCHES),--arch $(arch))
	@if command -v lintian >/dev/null; then \
		lintian dist/deb/*.deb || true; \
	fi

## The arm64 package proven in an arm64 Debian root under qemu (needs root):
## install, enrol, one cycle against a reference server, upgrade, remove, purge.
arm64-proof: setup arm64-tools
	@test "$$(id -u)" = 0 || { echo "arm64-proof needs root (debootstrap, chroot, binfmt_misc)"; exit 1; }
	$(PY) -m pytest -q -s tests/packaging/test_arm64.py

# debootstrap and qemu for the arm64 proof, which `make test` runs too (about
# 5 minutes, 10 the first time on a machine: the arm64 root is then made and
# cached); without root the proof skips itself, with the reason.
arm64-tools:
	@if [ "$$(id -u)" = 0 ] && ! dpkg -s $(ARM64_PROOF_PKGS) >/dev/null 2>&1; then \
		echo ">> installing Debian packages: $(ARM64_PROOF_PKGS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(ARM64_PROOF_PKGS) >/dev/null; \
	fi

bench: setup
	$(PY) tests/bench/ingest.py
	$(PY) -m tests.bench.replicas

clean:
	rm -rf demo-out demo-scale-out .pytest_cache .mypy_cache dist
