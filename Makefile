# vmm: a minimal microVM monitor on Linux KVM.
#   make            build ./vmm and the test guest
#   make run        install what is missing, build, boot the test guest
#   make test       every test: unit (normal + ASan/UBSan), e2e (both builds)

CC ?= gcc
BUILD ?= build
SAN ?= 0

CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
	-fno-strict-aliasing -I.
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS ?=
CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
LDLIBS := -pthread -luring -ljansson -lseccomp -lcap-ng

# Compile-time modules (module.h): each is modules/NAME/*.c, linked as
# objects (never from the archive: nothing references a module by name, so
# the linker would leave it out) and found at run time in the vmm_modules
# section. MODULES= builds the minimal core.
MODULES_ALL := hugepages nested migration
MODULES ?= $(MODULES_ALL)
$(foreach m,$(MODULES),$(if $(filter $(m),$(MODULES_ALL)),,\
	$(error unknown module '$(m)': the modules are $(MODULES_ALL))))
MODULE_SRCS := $(foreach m,$(MODULES),$(wildcard modules/$(m)/*.c))
MODULE_OBJS := $(MODULE_SRCS:%.c=$(BUILD)/%.o)
# Relink when the module list changes, not only when a file does.
MODULES_STAMP := $(BUILD)/modules.stamp
$(shell mkdir -p $(BUILD) && echo '$(MODULES)' | cmp -s - $(MODULES_STAMP) || \
	echo '$(MODULES)' > $(MODULES_STAMP))

# Everything but main() goes into a library so unit tests link the real code.
LIB_SRCS := $(filter-out vmm.c,$(wildcard *.c)) $(wildcard boot/*.c hw/*.c virtio/*.c api/*.c \
	seccomp/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
# A module's unit tests are tests/unit/test_mod_NAME*.c, built with it.
UNIT_SRCS := $(filter-out tests/unit/test_mod_%,$(wildcard tests/unit/test_*.c)) \
	$(foreach m,$(MODULES),$(wildcard tests/unit/test_mod_$(m)*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all vmm guest run test unit e2e asan min fuzz clean setup format
all: vmm guest

vmm: $(BUILD)/vmm
ifeq ($(BUILD),build)
	@cp --remove-destination $(BUILD)/vmm ./vmm
endif

$(BUILD)/vmm: $(BUILD)/vmm.o $(MODULE_OBJS) $(BUILD)/libvmm.a $(MODULES_STAMP)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

$(BUILD)/libvmm.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# -MMD: a test rebuilds when a header it includes changes, the shared
# helpers in tests/unit/*.h included. The .d files go beside, not into,
# $(BUILD)/tests: tests/run-all.sh runs everything named test_* there.
$(BUILD)/tests/%: tests/unit/%.c $(MODULE_OBJS) $(BUILD)/libvmm.a $(MODULES_STAMP)
	@mkdir -p $(dir $@) $(BUILD)/tests-deps
	$(CC) $(CFLAGS) -MMD -MP -MF $(BUILD)/tests-deps/$*.d -MT $@ -o $@ \
		$(filter %.c %.o %.a,$^) $(LDFLAGS) $(LDLIBS) -lcmocka

guest:
	$(MAKE) -C tests/guest

setup:
	@scripts/setup.sh

# The main job: by default boot the bundled test guest's hello test.
# Another kernel: make run KERNEL=path/to/vmlinux CMDLINE="console=ttyS0 ..."
KERNEL ?= tests/guest/out/guest.elf
CMDLINE ?= guest.test=hello
run: setup
	@$(MAKE) --no-print-directory all
	./vmm --kernel "$(KERNEL)" --cmdline "$(CMDLINE)" --debug-exit

unit: $(UNIT_BINS)
	@tests/run-unit.sh normal $(UNIT_BINS)

asan:
	$(MAKE) BUILD=build-asan SAN=1 build-asan/vmm $(UNIT_SRCS:tests/unit/%.c=build-asan/tests/%)

# The minimal core, no module at all: build-min/vmm and its unit tests.
min:
	$(MAKE) BUILD=build-min MODULES= build-min/vmm \
		$(filter-out build-min/tests/test_mod_%,$(UNIT_SRCS:tests/unit/%.c=build-min/tests/%))

test: setup
	@$(MAKE) --no-print-directory all asan min $(UNIT_BINS)
	@tests/run-all.sh

# libFuzzer smoke run over the checked-in seeds (new finds go to
# build-fuzz/corpus, never into the seeds): FUZZ_SECS bounds it.
FUZZ_CC ?= clang
FUZZ_SECS ?= 20
FUZZ_SRCS := tests/fuzz/fuzz_virtqueue.c mem.c log.c virtio/virtqueue.c virtio/blk_req.c
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build-fuzz/fuzz_virtqueue: $(FUZZ_SRCS) $(wildcard virtio/*.h) mem.h log.h \
	tests/fuzz/fuzzvq.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS)

FUZZ_HTTP_SRCS := tests/fuzz/fuzz_http.c api/http.c api/router.c api/handlers.c \
	api/config_json.c api/metrics.c config.c log.c loop.c module.c \
	boot/cpu_spec.c boot/cpu_features.c boot/cpu_model.c boot/cpuid.c

build-fuzz/fuzz_http: $(FUZZ_HTTP_SRCS) $(wildcard api/*.h) config.h vmm.h log.h loop.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_HTTP_SRCS) -ljansson

FUZZ_NET_SRCS := tests/fuzz/fuzz_net_tx.c mem.c log.c virtio/virtqueue.c virtio/net_dp.c

build-fuzz/fuzz_net_tx: $(FUZZ_NET_SRCS) $(wildcard virtio/*.h) mem.h log.h vmm.h \
	tests/fuzz/fuzzvq.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_NET_SRCS)

FUZZ_BALLOON_SRCS := tests/fuzz/fuzz_balloon.c mem.c log.c virtio/virtqueue.c \
	virtio/balloon_pages.c virtio/balloon_stats.c

build-fuzz/fuzz_balloon: $(FUZZ_BALLOON_SRCS) $(wildcard virtio/*.h) mem.h log.h vmm.h \
	tests/fuzz/fuzzvq.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_BALLOON_SRCS)

fuzz: build-fuzz/fuzz_virtqueue build-fuzz/fuzz_http build-fuzz/fuzz_net_tx build-fuzz/fuzz_balloon
	@mkdir -p build-fuzz/corpus build-fuzz/corpus-http build-fuzz/corpus-net-tx \
		build-fuzz/corpus-balloon
	build-fuzz/fuzz_virtqueue -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus tests/fuzz/corpus/virtqueue
	build-fuzz/fuzz_http -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus-http tests/fuzz/corpus/http
	build-fuzz/fuzz_net_tx -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus-net-tx tests/fuzz/corpus/net_tx
	build-fuzz/fuzz_balloon -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus-balloon tests/fuzz/corpus/balloon

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-min build-fuzz vmm
	$(MAKE) -C tests/guest clean

-include $(LIB_OBJS:.o=.d) $(MODULE_OBJS:.o=.d) $(BUILD)/vmm.d $(wildcard $(BUILD)/tests-deps/*.d)
