/*
 * virtio/mmio.c: registers, feature negotiation, the device-status
 * machine (violations end in DEVICE_NEEDS_RESET + a config interrupt, never
 * a crash), queue set-up, reset (immediate and deferred), notifications
 * through the event loop, interrupts, config space.
 */
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devtest.h"
#include "virtio/mmio.h"
#include "vqtest.h"

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV VIRTIO_CONFIG_S_DRIVER
#define S_FOK VIRTIO_CONFIG_S_FEATURES_OK
#define S_DOK VIRTIO_CONFIG_S_DRIVER_OK
#define S_NR VIRTIO_CONFIG_S_NEEDS_RESET
#define FEATURES (VIRTIO_TRANSPORT_FEATURES | (1ULL << 5))

struct fake {
	struct {
		struct virtio_mmio_state t;
		uint8_t config[16];
	} st;
	struct virtio_dev d;
	unsigned notified[2];
	unsigned resets;
	bool busy; /* reset() defers */
	uint8_t written[16];
};

static void fake_notify(struct virtio_dev *d, unsigned q)
{
	struct fake *f = d->opaque;
	f->notified[q]++;
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct fake *f = d->opaque;
	memcpy(f->written + off, data, len);
}

static bool fake_reset(struct virtio_dev *d)
{
	struct fake *f = d->opaque;
	f->resets++;
	return !f->busy;
}

static const struct virtio_device_ops fake_ops = {
	.name = "fake",
	.device_id = 42,
	.num_queues = 2,
	.queue_max = 16,
	.queue_notify = fake_notify,
	.config_write = fake_config_write,
	.reset = fake_reset,
};

static struct vm *vm;
static struct fake *f;

/* The irqfd was signalled since the last look. */
static bool irq_raised(void)
{
	uint64_t v;
	return read(f->d.irq_fd, &v, sizeof(v)) == sizeof(v) && v > 0;
}

static int setup(void **state)
{
	(void)state;
	vm = devtest_vm_new();
	f = calloc(1, sizeof(*f));
	if (guest_mem_init(&vm->mem, 16 * MIB, 0) < 0)
		return -1;
	f->st.t.device_features = FEATURES;
	memcpy(f->st.config, "0123456789abcdef", 16);
	return virtio_mmio_init(&f->d, vm, &fake_ops, f, &f->st.t, f->st.config, 16, 0);
}

static int teardown(void **state)
{
	(void)state;
	virtio_mmio_destroy(&f->d);
	guest_mem_destroy(&vm->mem);
	free(f);
	devtest_vm_free(vm);
	return 0;
}

/* Queue q at the vqtest.h ring addresses. */
static void setup_queue(unsigned q, uint32_t size)
{
	devtest_virtio_queue(vm, q, size, VQT_DESC, VQT_AVAIL, VQT_USED);
}

static void bring_up(void)
{
	devtest_virtio_features(vm, FEATURES);
	setup_queue(0, 16);
	devtest_virtio_driver_ok(vm);
}

/* The driver broke the protocol: NEEDS_RESET, a config interrupt, and
 * only a reset brings the device back. */
static void assert_needs_reset(void)
{
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & S_NR);
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_true(irq_raised());
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	bring_up(); /* and it works again */
}

static void identity(void **state)
{
	(void)state;
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)FEATURES);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_FEATURES),
			 (uint32_t)(FEATURES >> 32));
	devtest_mmio_wr(vm, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	char buf[64];
	assert_true(virtio_mmio_announce(&f->d, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, " virtio_mmio.device=4K@0xd0000000:5");
	assert_int_equal(virtio_mmio_slot_irq(8), 15);
	assert_int_equal(virtio_mmio_slot_base(2), VIRTIO_MMIO_BASE + 0x2000);
}

static void happy_path(void **state)
{
	(void)state;
	bring_up();
	assert_true(virtio_dev_has_feature(&f->d, 32));
	assert_true(virtio_dev_queue_live(&f->d, 0));
	assert_false(virtio_dev_queue_live(&f->d, 1)); /* never set up */
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_READY), 1);
}

static void version_1_required(void **state)
{
	(void)state;
	/* FEATURES_OK refused */
	assert_int_equal(devtest_virtio_features(vm, FEATURES & ~(1ULL << 32)), S_ACK | S_DRV);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	assert_needs_reset();
}

static void unoffered_feature_refused(void **state)
{
	(void)state;
	assert_int_equal(devtest_virtio_features(vm, FEATURES | (1ULL << 7)), S_ACK | S_DRV);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	/* the minimum is fine */
	assert_int_equal(devtest_virtio_features(vm, 1ULL << 32), S_ACK | S_DRV | S_FOK);
}

static void driver_ok_without_features_ok(void **state)
{
	(void)state;
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_DOK);
	assert_needs_reset();
}

static void skipped_steps(void **state)
{
	(void)state;
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_DRV); /* DRIVER before ACKNOWLEDGE */
	assert_needs_reset();
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_FOK); /* FEATURES_OK before DRIVER */
	assert_needs_reset();
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK); /* clearing a bit without reset */
	assert_needs_reset();
}

static void features_after_features_ok(void **state)
{
	(void)state;
	devtest_virtio_features(vm, FEATURES);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_needs_reset();
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DRIVER_FEATURES, 0); /* before DRIVER */
	assert_needs_reset();
}

static void queue_setup_out_of_order(void **state)
{
	(void)state;
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	setup_queue(0, 16); /* before FEATURES_OK */
	assert_needs_reset();
	setup_queue(1, 16); /* after DRIVER_OK (bring_up ran) */
	assert_needs_reset();
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_virtio_features(vm, FEATURES);
	setup_queue(0, 16);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x8000); /* changed while ready */
	assert_needs_reset();
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_READY, 0); /* pulled after DRIVER_OK */
	assert_needs_reset();
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_virtio_features(vm, FEATURES);
	setup_queue(5, 16); /* no such queue */
	assert_needs_reset();
}

static void bad_queue_config(void **state)
{
	(void)state;
	static const uint32_t sizes[] = { 0, 3, 32, 0x10000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
		devtest_virtio_features(vm, FEATURES);
		setup_queue(0, sizes[i]);
		assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_READY), 0);
		assert_needs_reset();
	}
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	devtest_virtio_features(vm, FEATURES);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NUM, 16);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_DESC_HIGH, 1); /* 4 GiB: not RAM here */
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)VQT_AVAIL);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)VQT_USED);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_needs_reset();
}

static void needs_reset_freezes_the_device(void **state)
{
	(void)state;
	bring_up();
	virtio_dev_needs_reset(&f->d, "test");
	assert_false(virtio_dev_queue_live(&f->d, 0));
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK | 0x80);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS),
			 S_ACK | S_DRV | S_FOK | S_DOK | S_NR);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	devtest_pump(vm, 0);
	assert_int_equal(f->notified[0], 0);
	assert_needs_reset();
}

static void reset_clears_everything(void **state)
{
	(void)state;
	bring_up();
	virtio_dev_config_changed(&f->d);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->resets, 1);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(f->st.t.driver_features, 0);
	assert_int_equal(f->st.t.queues[0].size, 0);
	assert_int_equal(f->st.t.device_features, FEATURES);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION), 1); /* kept */
	/* drivers do this after a reset: harmless */
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0);
}

static void deferred_reset(void **state)
{
	(void)state;
	bring_up();
	f->busy = true;
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	/* Still busy: Status does not read 0, and writes are ignored. */
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
	assert_false(virtio_dev_queue_live(&f->d, 0));
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
	pthread_mutex_lock(&f->d.lock);
	virtio_dev_reset_done(&f->d);
	pthread_mutex_unlock(&f->d.lock);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0);
	f->busy = false;
	bring_up();
}

static void notifications(void **state)
{
	(void)state;
	devtest_virtio_features(vm, FEATURES);
	setup_queue(0, 16);
	/* Before DRIVER_OK a notify does nothing... */
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	devtest_pump(vm, 0);
	assert_int_equal(f->notified[0], 0);
	/* ...and DRIVER_OK looks at every ready queue once. */
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	devtest_pump(vm, 0);
	assert_int_equal(f->notified[0], 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* coalesced by the eventfd */
	devtest_pump(vm, 0);
	assert_int_equal(f->notified[0], 2);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 1); /* not ready: dropped */
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 7); /* no such queue */
	devtest_pump(vm, 0);
	assert_int_equal(f->notified[1], 0);
	assert_int_equal(f->notified[0], 2);
}

static void used_interrupts(void **state)
{
	(void)state;
	bring_up();
	irq_raised();
	pthread_mutex_lock(&f->d.lock);
	virtio_dev_used(&f->d, 0); /* nothing pushed: nothing to say */
	pthread_mutex_unlock(&f->d.lock);
	assert_false(irq_raised());
	pthread_mutex_lock(&f->d.lock);
	vq_push(&f->d.vq[0], 1, 10);
	virtio_dev_used(&f->d, 0);
	pthread_mutex_unlock(&f->d.lock);
	assert_true(irq_raised());
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	struct vring_used *u = guest_ptr(&vm->mem, VQT_USED, 4);
	assert_int_equal(u->idx, 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* The driver asked for no interrupts (EVENT_IDX: used_event behind). */
	struct vring_avail *a = guest_ptr(&vm->mem, VQT_AVAIL, 4);
	a->ring[16] = 0;
	pthread_mutex_lock(&f->d.lock);
	vq_push(&f->d.vq[0], 1, 10);
	virtio_dev_used(&f->d, 0);
	pthread_mutex_unlock(&f->d.lock);
	assert_false(irq_raised());
	assert_int_equal(u->idx, 2);
}

static void config_space(void **state)
{
	(void)state;
	uint8_t b[8] = { 0 };
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 2, b, 2, false);
	assert_memory_equal(b, "23", 2);
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 8, b, 8, false);
	assert_memory_equal(b, "89abcdef", 8);
	memset(b, 0x77, sizeof(b));
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 12, b, 8, false);
	assert_memory_equal(b, "\0\0\0\0\0\0\0\0", 8); /* runs past the end */
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 0xe00, b, 4, false);
	assert_memory_equal(b, "\0\0\0\0", 4);
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 4, (uint8_t *)"xy", 2, true);
	assert_memory_equal(f->written + 4, "xy", 2);
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 15, (uint8_t *)"zz", 2, true);
	assert_int_equal(f->written[15], 0); /* out of range: ignored */
	irq_raised();
	pthread_mutex_lock(&f->d.lock);
	virtio_dev_config_changed(&f->d);
	pthread_mutex_unlock(&f->d.lock);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_true(irq_raised());
}

static void odd_accesses(void **state)
{
	(void)state;
	uint8_t b[4] = { 0xaa, 0xaa, 0xaa, 0xaa };
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE, b, 2, false);
	assert_int_equal(b[0], 0); /* narrow register read: zero */
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE + 1, b, 4, false);
	assert_int_equal(b[0], 0); /* misaligned */
	uint8_t one = S_ACK;
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_STATUS, &one, 1, true);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0); /* narrow write: ignored */
	devtest_mmio_wr(vm, VIRTIO_MMIO_MAGIC_VALUE, 0); /* read-only register */
	devtest_mmio_wr(vm, 0x0f0, 1);                   /* unknown */
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(identity),
		T(happy_path),
		T(version_1_required),
		T(unoffered_feature_refused),
		T(driver_ok_without_features_ok),
		T(skipped_steps),
		T(features_after_features_ok),
		T(queue_setup_out_of_order),
		T(bad_queue_config),
		T(needs_reset_freezes_the_device),
		T(reset_clears_everything),
		T(deferred_reset),
		T(notifications),
		T(used_interrupts),
		T(config_space),
		T(odd_accesses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
