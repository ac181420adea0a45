# kvmstack: build, run and test.  See README.md.
#
#   make            build build/kvmstack (and the unit-test runner)
#   make deps       install the Debian packages the build and tests need
#   make run        deps + build + start `kvmstack serve` on :5000
#   make check      deps + build + every test tier (unit, api)
#   make check-unit unit tests only (no root, no network)
#   make check-api  API tests against a real kvmstack serve
#   make bench      API latency/throughput benchmark (wrk)
#   make check-asan every tier under AddressSanitizer/UBSan

CC      ?= gcc
BUILD   ?= build
PKGS    := sqlite3 libmicrohttpd jansson libcrypt libcrypto libssh yaml-0.1 \
           libcurl
CFLAGS  ?= -O2 -g
VERSION := 0.1.0
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -Wno-format-nonliteral -Iinclude -Imgmt -Ihostagent -D_GNU_SOURCE \
           -DKVMSTACK_VERSION='"$(VERSION)"' \
           $(shell pkg-config --cflags $(PKGS) $(AGENT_PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
AGENT_PKGS := jansson libcrypto libvirt libxml-2.0 libnl-3.0 libnl-route-3.0
AGENT_LDLIBS := $(shell pkg-config --libs $(AGENT_PKGS) 2>/dev/null)

# Debian packages: build, then test tools.
DEB_BUILD := build-essential pkg-config libsqlite3-dev libmicrohttpd-dev \
             libjansson-dev libssl-dev libcrypt-dev libssh-dev libyaml-dev \
             libvirt-dev libcurl4-openssl-dev libxml2-dev libnl-3-dev \
             libnl-route-3-dev
# Tests: a real sshd in network namespaces, and what the KVM-host playbook
# installs (present beforehand, the host bootstrap finds them and the test
# does not depend on the network; see TESTBED.md).
DEB_TEST  := python3 sqlite3 curl wrk openssh-server openssh-client sshpass \
             iproute2 openssl util-linux procps \
             qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients \
             nftables dnsmasq-base nfs-common
DEPS_STAMP := $(BUILD)/.deps-installed

LIB_SRC  := $(wildcard lib/*.c)
MGMT_SRC := $(filter-out mgmt/main.c,$(wildcard mgmt/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MGMT_OBJ := $(MGMT_SRC:%.c=$(BUILD)/%.o)
AGENT_SRC := $(wildcard hostagent/*.c)
AGENT_OBJ := $(AGENT_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)

PORT ?= 5000
RUN_DB ?= $(CURDIR)/var/kvmstack.db

.PHONY: all deps run check check-unit check-api e2e bench check-asan clean

all: $(BUILD)/kvmstack $(BUILD)/kvmstack-agent $(BUILD)/unit-tests

$(BUILD)/%.o: %.c $(wildcard include/kvmstack/*.h) $(wildcard mgmt/*.h) \
               $(wildcard hostagent/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/kvmstack: $(BUILD)/mgmt/main.o $(MGMT_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kvmstack-agent: $(AGENT_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(AGENT_LDLIBS) -lpthread

$(BUILD)/unit-tests: $(UNIT_OBJ) $(MGMT_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Installs exactly what the build and the tests need (Debian 12, as root).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): Makefile
	@if [ "$$(id -u)" != 0 ]; then \
	    echo "make deps: run as root (apt-get install)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(DEB_BUILD) $(DEB_TEST) $(DEB_IMAGES) $(DEB_UI)
	@mkdir -p $(BUILD) && touch $@

run: deps
	$(MAKE) all
	@mkdir -p $(dir $(RUN_DB))
	@echo "Starting kvmstack serve on 0.0.0.0:$(PORT), inventory $(RUN_DB)."
	@echo "On the first start it prints the admin password (or uses"
	@echo "KVMSTACK_ADMIN_PASSWORD).  Log in from another shell with:"
	@echo "    $(BUILD)/kvmstack login --url http://127.0.0.1:$(PORT) admin"
	exec $(BUILD)/kvmstack serve --listen 0.0.0.0:$(PORT) --db $(RUN_DB)

# Every tier: unit, api, cli, system (real hosts, VMs), agent, images, ui.
check: deps deps-ui
	$(MAKE) all images
	tests/run $(if $(T),--only '$(T)')

# The tutorial end to end with SSH through the VIPs (also part of check).
e2e: deps
	$(MAKE) all images
	tests/run --tier e2e

check-unit: all
	tests/run --tier unit

check-api: all
	tests/run --tier api

bench: deps
	$(MAKE) all
	tests/bench/run
	for s in $(BENCH_EXTRA); do $$s || exit 1; done

check-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" all
	KVMSTACK_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1 tests/run

clean:
	rm -rf build build-asan

# The web UI and its browser tests (make check-ui): see mk/web.mk.
-include mk/web.mk

# Test images (make images, images-deps, check-images): see mk/images.mk.
-include mk/images.mk

# The playbook benchmark against ansible-playbook: see mk/bench-playbook.mk.
-include mk/bench-playbook.mk

# kvmstack-vr, the virtual router's daemon, its tests and bench: mk/vr.mk.
-include mk/vr.mk
-include mk/bench-vm.mk

# Binaries that mk/ fragments add to `make all` (after their includes).
all: $(ALL_EXTRA)
