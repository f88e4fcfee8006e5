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
LDLIBS := -pthread -luring -ljansson

# Everything but main() goes into a library so unit tests link the real code.
LIB_SRCS := $(filter-out vmm.c,$(wildcard *.c)) $(wildcard boot/*.c hw/*.c virtio/*.c api/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all vmm guest run test unit e2e asan fuzz clean setup format
all: vmm guest

vmm: $(BUILD)/vmm
ifeq ($(BUILD),build)
	@cp --remove-destination $(BUILD)/vmm ./vmm
endif

$(BUILD)/vmm: $(BUILD)/vmm.o $(BUILD)/libvmm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libvmm.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvmm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcmocka

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

test: setup
	@$(MAKE) --no-print-directory all asan $(UNIT_BINS)
	@tests/run-all.sh

# libFuzzer smoke run over the checked-in seeds (new finds go to
# build-fuzz/corpus, never into the seeds): FUZZ_SECS bounds it.
FUZZ_CC ?= clang
FUZZ_SECS ?= 20
FUZZ_SRCS := tests/fuzz/fuzz_virtqueue.c mem.c log.c virtio/virtqueue.c virtio/blk_req.c
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build-fuzz/fuzz_virtqueue: $(FUZZ_SRCS) $(wildcard virtio/*.h) mem.h log.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS)

FUZZ_HTTP_SRCS := tests/fuzz/fuzz_http.c api/http.c api/router.c api/handlers.c \
	api/config_json.c api/metrics.c config.c log.c loop.c

build-fuzz/fuzz_http: $(FUZZ_HTTP_SRCS) $(wildcard api/*.h) config.h vmm.h log.h loop.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_HTTP_SRCS) -ljansson

FUZZ_NET_SRCS := tests/fuzz/fuzz_net_tx.c mem.c log.c virtio/virtqueue.c virtio/net_dp.c

build-fuzz/fuzz_net_tx: $(FUZZ_NET_SRCS) $(wildcard virtio/*.h) mem.h log.h vmm.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_NET_SRCS)

fuzz: build-fuzz/fuzz_virtqueue build-fuzz/fuzz_http build-fuzz/fuzz_net_tx
	@mkdir -p build-fuzz/corpus build-fuzz/corpus-http build-fuzz/corpus-net-tx
	build-fuzz/fuzz_virtqueue -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus tests/fuzz/corpus/virtqueue
	build-fuzz/fuzz_http -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus-http tests/fuzz/corpus/http
	build-fuzz/fuzz_net_tx -max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
		build-fuzz/corpus-net-tx tests/fuzz/corpus/net_tx

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz vmm
	$(MAKE) -C tests/guest clean

-include $(LIB_OBJS:.o=.d) $(BUILD)/vmm.d
