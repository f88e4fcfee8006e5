/*
 * virtio/state.c: a virtio-blk device's state saved in the middle of its
 * life and loaded into a new device over the same image carries on (the
 * ring's indices, the driver's features, a request after the restore),
 * and saved states that do not fit (another kind, other features, queues
 * the device does not have or cannot take, a resized image, a short
 * buffer: what a hostile snapshot file could hold) are refused without a
 * change.
 */
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "devtest.h"
#include "virtio/blk.h"
#include "virtio/state.h"
#include "vqtest.h"

#define QSIZE 16
#define HDR 0x20000ULL
#define DATA 0x21000ULL
#define STATUS 0x22000ULL

static char img_path[] = "/tmp/vmm-test-state-XXXXXX";
static struct vm *vm;

/* A device in window 0 (the MMIO bus forgets the window of one before:
 * devices are never taken away from it in the VMM). */
static struct virtio_blk *device(void)
{
	bus_init(&vm->mmio, "mmio");
	struct disk_config c;
	memset(&c, 0, sizeof(c));
	snprintf(c.path, sizeof(c.path), "%s", img_path);
	c.engine = DISK_ENGINE_SYNC;
	int status = -1;
	struct virtio_blk *b = virtio_blk_create(vm, &c, 0, &status);
	assert_non_null(b);
	return b;
}

static struct vring_avail *avail(void)
{
	return devtest_gp(vm, VQT_AVAIL);
}

static struct vring_used *used(void)
{
	return devtest_gp(vm, VQT_USED);
}

/* One read of sector 1 through descriptors 0..2; its status byte. */
static int read_sector(void)
{
	struct vring_desc *d = devtest_gp(vm, VQT_DESC);
	*(struct virtio_blk_outhdr *)devtest_gp(vm, HDR) =
	    (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_IN, .sector = 1};
	*(uint8_t *)devtest_gp(vm, STATUS) = 0xee;
	d[0] = (struct vring_desc){HDR, 16, VRING_DESC_F_NEXT, 1};
	d[1] = (struct vring_desc){DATA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2};
	d[2] = (struct vring_desc){STATUS, 1, VRING_DESC_F_WRITE, 0};
	uint16_t before = used()->idx;
	avail()->ring[avail()->idx % QSIZE] = 0;
	avail()->idx++;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 100 && used()->idx == before; i++)
		devtest_pump(vm, 100);
	assert_int_equal((uint16_t)(used()->idx - before), 1);
	return *(uint8_t *)devtest_gp(vm, STATUS);
}

static int setup(void **state)
{
	(void)state;
	int fd = mkstemp(img_path);
	if (fd < 0 || ftruncate(fd, 1 * MIB) < 0)
		return -1;
	close(fd);
	vm = devtest_vm_new();
	return guest_mem_init(&vm->mem, 16 * MIB, 0) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	guest_mem_destroy(&vm->mem);
	devtest_vm_free(vm);
	unlink(img_path);
	return 0;
}

/* A device the driver set up and used three times; its saved state. */
static struct virtio_blk_state used_device_state(void)
{
	struct virtio_blk *b = device();
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_virtio_features(vm, b->st.transport.device_features);
	devtest_virtio_queue(vm, 0, QSIZE, VQT_DESC, VQT_AVAIL, VQT_USED);
	devtest_virtio_driver_ok(vm);
	for (int i = 0; i < 3; i++)
		assert_int_equal(read_sector(), VIRTIO_BLK_S_OK);
	struct virtio_blk_state s;
	char why[200];
	assert_int_equal(virtio_state_size(&b->vdev), sizeof(s));
	assert_int_equal(virtio_state_save(&b->vdev, &s, sizeof(s), why, sizeof(why)), 0);
	virtio_blk_destroy(b);
	return s;
}

static void restore_carries_on(void **state)
{
	(void)state;
	struct virtio_blk_state s = used_device_state();
	assert_int_equal(s.transport.queues[0].last_avail, 3);
	struct virtio_blk *b = device();
	char why[200];
	assert_int_equal(virtio_state_restore(&b->vdev, &s, sizeof(s), why, sizeof(why)), 0);
	/* The driver's view is the saved one: status, features, the queue. */
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK,
			 VIRTIO_CONFIG_S_DRIVER_OK);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(b->st.transport.driver_features, s.transport.driver_features);
	/* ... and the ring goes on from index 3. */
	assert_int_equal(read_sector(), VIRTIO_BLK_S_OK);
	assert_int_equal(used()->idx, 4);
	assert_int_equal(b->st.transport.queues[0].last_avail, 4);
	virtio_blk_destroy(b);
}

static void expect_refused(const struct virtio_blk_state *s, size_t len, const char *text)
{
	struct virtio_blk *b = device();
	struct virtio_blk_state before = b->st;
	char why[200] = "";
	assert_int_equal(virtio_state_check(&b->vdev, s, len, why, sizeof(why)), -1);
	assert_int_equal(virtio_state_restore(&b->vdev, s, len, why, sizeof(why)), -1);
	if (!strstr(why, text))
		fail_msg("refused with \"%s\", expected \"%s\"", why, text);
	assert_memory_equal(&b->st, &before, sizeof(before));
	virtio_blk_destroy(b);
}

static void bad_states_refused(void **state)
{
	(void)state;
	struct virtio_blk_state good = used_device_state(), s;
	expect_refused(&good, sizeof(good) - 1, "expected");
	s = good;
	s.transport.device_features ^= 1ULL << VIRTIO_BLK_F_RO;
	expect_refused(&s, sizeof(s), "offered features");
	s = good;
	s.transport.driver_features |= 1ULL << 60; /* never offered */
	expect_refused(&s, sizeof(s), "malformed transport");
	s = good;
	s.transport.queues[0].size = 12; /* not a power of two */
	expect_refused(&s, sizeof(s), "queue 0");
	s = good;
	s.transport.queues[0].size = 512; /* more than QueueNumMax */
	expect_refused(&s, sizeof(s), "queue 0");
	s = good;
	s.transport.queues[3] = s.transport.queues[0]; /* a queue blk does not have */
	expect_refused(&s, sizeof(s), "queue 3");
	s = good;
	s.transport.queues[0].ready = 7;
	expect_refused(&s, sizeof(s), "queue 0");
	s = good;
	s.config.capacity += 8;
	expect_refused(&s, sizeof(s), "changed size");
	s = good;
	s.settings.ro = 1;
	expect_refused(&s, sizeof(s), "read-only");
}

static void rings_outside_ram_refused(void **state)
{
	(void)state;
	struct virtio_blk_state s = used_device_state();
	s.transport.queues[0].used_addr = 64 * MIB; /* past the 16 MiB of RAM */
	expect_refused(&s, sizeof(s), "outside guest RAM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(restore_carries_on),
	    cmocka_unit_test(bad_states_refused),
	    cmocka_unit_test(rings_outside_ram_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
