# mk/web.mk: the web UI (web/), embedded into $(BUILD)/kvmstack, and its
# browser tests (tests/ui/).  Included by the Makefile.
#
#   make check-ui   browser tests: Debian's chromium driven by playwright-core
#                   against a real `kvmstack serve` (TAP; see tests/ui/run.js)
#   make deps-ui    the Debian packages and npm modules those tests need

# The files served; web/embed.py turns them into one C include file that
# mgmt/web.c includes.  Only the files listed here are embedded.
WEB_ASSETS := web/index.html web/app.css web/app.js web/favicon.svg
WEB_INC    := $(BUILD)/web/web-assets.inc
DEB_UI     := chromium
UI_STAMP   := $(BUILD)/.deps-ui-installed

$(WEB_INC): web/embed.py $(WEB_ASSETS)
	@mkdir -p $(dir $@)
	python3 web/embed.py -o $@ $(WEB_ASSETS)

$(BUILD)/mgmt/web.o: $(WEB_INC)
$(BUILD)/mgmt/web.o: override CFLAGS += -I$(BUILD)/web

.PHONY: deps-ui check-ui

# Node.js and npm come with the machine; Debian's are installed only where
# they are missing.  `npm ci` installs exactly tests/ui/package-lock.json;
# playwright-core downloads no browser: the tests use /usr/bin/chromium.
deps-ui: $(UI_STAMP)
$(UI_STAMP): mk/web.mk tests/ui/package.json tests/ui/package-lock.json
	@if [ "$$(id -u)" != 0 ]; then \
	    echo "make deps-ui: run as root (apt-get install)"; exit 1; fi
	@if ! [ -x /usr/bin/chromium ] || ! command -v node >/dev/null \
	    || ! command -v npm >/dev/null; then \
	    apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $(DEB_UI) \
	        $$(command -v node >/dev/null || echo nodejs) \
	        $$(command -v npm >/dev/null || echo npm); fi
	cd tests/ui && npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(BUILD) && touch $@

# The test-bed part adds a host (which gets kvmstack-agent) and images made
# with qemu-img: hence deps and all.
check-ui: deps deps-ui
	$(MAKE) all
	KVMSTACK_BUILD=$(BUILD) node tests/ui/run.js
