# Telehealth: an nginx module and a Janus plugin.
#
#   make            build both plugins (runs ./configure when needed)
#   make run        install what is missing, build, start the local stack
#   make test       the same, then every test suite
#   make test-sql   the SQL tests (tests/sql) against a scratch database
#   make test-media media tests in a private network namespace
#   make stop       stop the local stack
#   make bench      benchmarks against their baselines
#   make install    install into DESTDIR with Debian's paths

SHELL := /bin/bash

# Written by ./configure.  The commands that install the build
# dependencies (run, test, bench) must work before it exists, so it is not
# a target make would try to remake before running them.
ifneq ($(wildcard config.mk),)
include config.mk
endif

BUILD      := build
NGX_BUILD  := $(BUILD)/nginx
NGX_MODULE := $(BUILD)/ngx_http_telehealth_module.so
PLUGIN     := $(BUILD)/libjanus_telehealth.so

COMMON_SRC := $(wildcard common/*.c)
COMMON_HDR := $(wildcard common/*.h)
NGX_SRC    := $(wildcard nginx-module/*.c nginx-module/*.h)
PLUGIN_SRC := $(wildcard janus-plugin/*.c)
PLUGIN_HDR := $(wildcard janus-plugin/*.h)
# The Redis scripts (common/lua/*.lua), compiled into both as th_lua_<name>.
LUA_SRC    := $(wildcard common/lua/*.lua)
LUA_GEN    := $(BUILD)/lua/th_lua.c $(BUILD)/lua/th_lua.h

WARN       := -Wall -Wextra -Wno-unused-parameter -Werror
ifeq ($(SANITIZE),yes)
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
endif
CFLAGS     ?= -O2 -g
PLUGIN_CFLAGS := $(CFLAGS) $(WARN) $(SAN_FLAGS) -fPIC -std=gnu11 \
                 -I$(JANUS_INCLUDE) -Icommon -I$(BUILD)/lua $(DEPS_CFLAGS)
PLUGIN_LIBS := -ljansson -lhiredis -ljwt -lcrypto -lglib-2.0 -lpthread

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/*.c))

.PHONY: all asan build deps run test test-media test-unit test-sql unit-tests test-integration stop bench install \
        clean distclean format

all:
	@[ -f config.mk ] || ./configure
	@$(MAKE) --no-print-directory build

build: $(NGX_MODULE) $(PLUGIN)

# lua2c.sh leaves an unchanged output alone: touch it so make is content.
$(BUILD)/lua/th_lua.c: $(LUA_SRC) scripts/lua2c.sh
	scripts/lua2c.sh common/lua $(BUILD)/lua
	@touch $(LUA_GEN)

$(BUILD)/lua/th_lua.h: $(BUILD)/lua/th_lua.c

# nginx builds dynamic modules against a configured copy of its sources,
# configured with the flags of the nginx binary that will load the module.
$(NGX_BUILD)/objs/Makefile: nginx-module/config config.mk
	rm -rf $(NGX_BUILD) && mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && \
	    if [ -n "$(NGINX_FLAGS_FILE)" ]; then . "$(NGINX_FLAGS_FILE)"; fi && \
	    TH_LUA_BUILD=$(abspath $(BUILD)/lua) \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --add-dynamic-module=$(CURDIR)/nginx-module \
	        --with-cc-opt="$(SAN_FLAGS)" --with-ld-opt="$(SAN_FLAGS)" \
	        > configure.log

$(NGX_MODULE): $(NGX_BUILD)/objs/Makefile $(NGX_SRC) $(COMMON_SRC) $(COMMON_HDR) \
               $(LUA_GEN)
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	@# A new file, not an overwrite: a running nginx has the old one mapped.
	cp $(NGX_BUILD)/objs/ngx_http_telehealth_module.so $@.tmp && mv $@.tmp $@

$(PLUGIN): $(PLUGIN_SRC) $(PLUGIN_HDR) $(COMMON_SRC) $(COMMON_HDR) $(LUA_GEN) \
           config.mk
	@mkdir -p $(BUILD)
	$(CC) $(PLUGIN_CFLAGS) -shared -o $@.tmp $(PLUGIN_SRC) $(COMMON_SRC) \
	    $(BUILD)/lua/th_lua.c \
	    $(PLUGIN_LIBS) && mv $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(COMMON_SRC) $(COMMON_HDR) config.mk
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(WARN) $(SAN_FLAGS) -Icommon $(DEPS_CFLAGS) -o $@ $< \
	    $(COMMON_SRC) -ljwt -ljansson -lcrypto -lcmocka

unit-tests: $(UNIT_TESTS)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/stack.sh start
	@scripts/stack.sh demo

stop:
	@scripts/stack.sh stop

test: deps
	@$(MAKE) --no-print-directory all unit-tests
	@scripts/test.sh

test-media: deps
	@$(MAKE) --no-print-directory all
	@scripts/media-tests.sh

# The nginx module and the unit tests with AddressSanitizer and UBSan, in
# build-asan/, and the API suite against that build (the plugin's memory is
# checked under valgrind: TH_VALGRIND=1 scripts/media-tests.sh).
# Its stack has a folder and ports of its own, beside a running make run.
asan: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=yes \
	    build-asan/ngx_http_telehealth_module.so unit-tests
	@TH_BUILD=$(CURDIR)/build-asan TH_SANITIZE=1 TH_RUN=$(CURDIR)/run/asan \
	    TH_PG_PORT=55442 TH_REDIS_PORT=56389 TH_NGINX_PORT=58090 \
	    TH_JANUS_HTTP_PORT=58098 TH_JANUS_WS_PORT=58198 TH_NGINX2_PORT=61091 \
	    scripts/test.sh asan

test-unit: unit-tests
	@scripts/test.sh unit

test-sql: deps
	@scripts/test.sh sql

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/stack.sh start
	@bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/nginx/modules
	install -m 644 $(NGX_MODULE) $(DESTDIR)$(PREFIX)/lib/nginx/modules/
	install -d $(DESTDIR)$(PREFIX)/lib/$(MULTIARCH)/janus/plugins
	install -m 644 $(PLUGIN) $(DESTDIR)$(PREFIX)/lib/$(MULTIARCH)/janus/plugins/
	install -d $(DESTDIR)/etc/janus
	install -m 644 conf/janus.plugin.telehealth.jcfg.sample $(DESTDIR)/etc/janus/
	install -d $(DESTDIR)/etc/nginx/snippets
	install -m 644 conf/telehealth-headers.conf $(DESTDIR)/etc/nginx/snippets/
	install -d $(DESTDIR)$(PREFIX)/share/telehealth/sql
	install -m 644 sql/*.sql $(DESTDIR)$(PREFIX)/share/telehealth/sql/
	install -d $(DESTDIR)$(PREFIX)/share/telehealth/sql/functions
	install -m 644 sql/functions/*.sql \
	    $(DESTDIR)$(PREFIX)/share/telehealth/sql/functions/
	install -m 755 scripts/migrate.sh $(DESTDIR)$(PREFIX)/share/telehealth/
	# the shipped texts; /etc/telehealth/templates gets the ones it lacks,
	# so texts an ops team edited survive an upgrade
	for d in templates/*/; do \
	    install -d $(DESTDIR)$(PREFIX)/share/telehealth/$$d \
	        $(DESTDIR)/etc/telehealth/$$d && \
	    install -m 644 $$d* $(DESTDIR)$(PREFIX)/share/telehealth/$$d && \
	    cp -n $$d* $(DESTDIR)/etc/telehealth/$$d || exit 1; \
	done

# Every C file of the tree with its .clang-format (scripts/test.sh checks).
format:
	clang-format-22 -i $$(git ls-files -- '*.c' '*.h')

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -f config.mk
