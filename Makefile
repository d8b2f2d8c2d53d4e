# Telehealth: an nginx module and a Janus plugin.
#
#   make            build both plugins (runs ./configure when needed)
#   make run        install what is missing, build, start the local stack
#   make test       the same, then every test suite (fuzz targets 30 s each)
#   make test-sql   the SQL tests (tests/sql) against a scratch database
#   make test-media media tests in a private network namespace
#   make stop       stop the local stack
#   make bench      benchmarks against their baselines
#   make fuzz       every libFuzzer target for FUZZ_TIME seconds (fuzz/)
#   make install    install into DESTDIR with Debian's paths
#   make deb        Debian packages in build/deb (debian/, debhelper)

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
# The schema version the nginx module needs: its last migration's number.
SCHEMA_GEN := $(BUILD)/lua/th_schema.h

WARN       := -Wall -Wextra -Wno-unused-parameter -Werror
ifeq ($(SANITIZE),yes)
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
endif
CFLAGS     ?= -O2 -g
PLUGIN_CFLAGS := $(CFLAGS) $(WARN) $(SAN_FLAGS) -fPIC -std=gnu11 \
                 -I$(JANUS_INCLUDE) -Icommon -I$(BUILD)/lua $(DEPS_CFLAGS)
PLUGIN_LIBS := -ljansson -lhiredis -lcjose -lcrypto -lglib-2.0 -lpthread

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/*.c))

.PHONY: deb all asan build deps run test test-media test-unit test-sql unit-tests test-integration stop bench install \
        clean distclean format fuzz fuzz-build

all:
	@[ -f config.mk ] || ./configure
	@$(MAKE) --no-print-directory build

build: $(NGX_MODULE) $(PLUGIN)

# lua2c.sh leaves an unchanged output alone: touch it so make is content.
$(BUILD)/lua/th_lua.c: $(LUA_SRC) scripts/lua2c.sh
	scripts/lua2c.sh common/lua $(BUILD)/lua
	@touch $(LUA_GEN)

$(BUILD)/lua/th_lua.h: $(BUILD)/lua/th_lua.c

$(SCHEMA_GEN): $(wildcard sql/[0-9]*.sql) scripts/schema-version.sh
	scripts/schema-version.sh sql $(BUILD)/lua
	@touch $@

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
               $(LUA_GEN) $(SCHEMA_GEN)
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
	    $(COMMON_SRC) -lcjose -ljansson -lcrypto -lcmocka

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
	@$(MAKE) --no-print-directory all unit-tests fuzz-build
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

# libFuzzer targets (fuzz/*.c; docs/operations.md, "Fuzzing"): clang with
# ASan and UBSan, in build-fuzz/.  A target includes the file it fuzzes,
# so that its static parsers are in reach.  nginx-side targets link the
# module's other objects (from an instrumented configure of nginx) and
# fuzz/fuzz_ngx.c for the nginx core they reach; plugin targets link the
# janus binary made loadable (scripts/fuzz-janus.sh).
FUZZ_BUILD   := build-fuzz
FUZZ_NGX     := $(FUZZ_BUILD)/nginx
FUZZ_TIME    ?= 60
JANUS_BIN    ?= /usr/bin/janus
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=gnu11 \
                -Wno-unused-parameter -Icommon -I$(BUILD)/lua $(DEPS_CFLAGS)
FUZZ_COMMON  := token
FUZZ_NGINX   := route query body template mail jwks
FUZZ_PLUGIN  := message sdp
FUZZ_TARGETS := $(FUZZ_COMMON) $(FUZZ_NGINX) $(FUZZ_PLUGIN)
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_TARGETS))
FUZZ_NGX_INC := $(addprefix -I$(FUZZ_NGX)/,src/core src/event \
                src/event/modules src/os/unix objs src/http src/http/modules) \
                -Inginx-module
FUZZ_NGX_LIB := $(FUZZ_BUILD)/libtelehealth.a
FUZZ_LIBS    := -lpq -lhiredis -ljansson -lcjose -largon2 -lcurl -lssl \
                -lcrypto -lpcre2-8 -lz -lcrypt -lpthread

fuzz-build: $(LUA_GEN)
	@[ -f config.mk ] || ./configure
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) scripts/fuzz.sh

# nginx with the fuzz instrumentation: the binary's objects and ours.
$(FUZZ_NGX)/objs/Makefile: nginx-module/config config.mk
	rm -rf $(FUZZ_NGX) && mkdir -p $(FUZZ_BUILD)
	cp -a $(NGINX_SRC) $(FUZZ_NGX)
	cd $(FUZZ_NGX) && TH_LUA_BUILD=$(abspath $(BUILD)/lua) \
	    ./configure --with-cc=$(FUZZ_CC) --with-compat --with-threads \
	        --add-dynamic-module=$(CURDIR)/nginx-module \
	        --with-cc-opt="$(FUZZ_SAN) -fsanitize=fuzzer-no-link -Wno-error" \
	        --with-ld-opt="$(FUZZ_SAN)" > configure.log

$(FUZZ_BUILD)/libtelehealth.a: $(FUZZ_NGX)/objs/Makefile $(NGX_SRC) \
                               $(COMMON_SRC) $(COMMON_HDR) $(LUA_GEN)
	$(MAKE) -s -C $(FUZZ_NGX) -f objs/Makefile modules
	rm -f $@ && ar rcs $@ $$(find $(FUZZ_NGX)/objs/addon -name '*.o')

$(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_COMMON)): $(FUZZ_BUILD)/fuzz-%: \
        fuzz/%.c $(COMMON_SRC) $(COMMON_HDR)
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(COMMON_SRC) \
	    -lcjose -ljansson -lcrypto

$(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_NGINX)): $(FUZZ_BUILD)/fuzz-%: \
        fuzz/%.c fuzz/fuzz_ngx.h fuzz/fuzz_ngx.c $(FUZZ_NGX_LIB) $(NGX_SRC)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_NGX_INC) -fsanitize=fuzzer -o $@ $< \
	    fuzz/fuzz_ngx.c $(FUZZ_NGX_LIB) $(FUZZ_LIBS) \
	    -no-pie -Wl,--unresolved-symbols=ignore-all

$(FUZZ_BUILD)/libjanus-core.so: scripts/fuzz-janus.sh
	@mkdir -p $(FUZZ_BUILD)
	scripts/fuzz-janus.sh $(JANUS_BIN) $@

# a target that includes a plugin file (for its static functions) links
# the others
$(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_PLUGIN)): $(FUZZ_BUILD)/fuzz-%: \
        fuzz/%.c fuzz/fuzz_janus.c fuzz/fuzz_janus.h $(PLUGIN_SRC) \
        $(PLUGIN_HDR) $(COMMON_SRC) $(LUA_GEN) $(FUZZ_BUILD)/libjanus-core.so
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(JANUS_INCLUDE) -Ijanus-plugin \
	    -fsanitize=fuzzer -o $@ $< fuzz/fuzz_janus.c \
	    $(filter-out $(shell sed -n 's|^#include "\.\./\(janus-plugin/.*\.c\)"|\1|p' $<), \
	        $(PLUGIN_SRC)) \
	    $(COMMON_SRC) $(BUILD)/lua/th_lua.c \
	    $(FUZZ_BUILD)/libjanus-core.so -Wl,-rpath,$(abspath $(FUZZ_BUILD)) \
	    $(PLUGIN_LIBS)

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

# Debian packages of the tree (debian/, debhelper and dh_nginx) in
# build/deb: the committed files are copied there and built apart.
DEB_DIR := $(BUILD)/deb

deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	git ls-files -z --cached --others --exclude-standard \
	    | xargs -0 cp --parents -t $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc \
	    >../build.log 2>&1 || { tail -n 40 ../build.log; exit 1; }
	@ls $(DEB_DIR)/*.deb

# Every C file of the tree with its .clang-format (scripts/test.sh checks).
format:
	clang-format-22 -i $$(git ls-files -- '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)

distclean: clean
	rm -f config.mk
