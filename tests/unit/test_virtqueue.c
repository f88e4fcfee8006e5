/*
 * virtio/virtqueue.c against crafted and malicious rings: chain walking,
 * indirect tables, bounds, loops, the avail index, used-ring publication
 * and both notification-suppression schemes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vqtest.h"

#define MEM (16 * MIB)
#define F_NEXT VRING_DESC_F_NEXT
#define F_W VRING_DESC_F_WRITE
#define F_IND VRING_DESC_F_INDIRECT

static struct vqt t;

static int setup(void **state)
{
	(void)state;
	return vqt_init(&t, MEM, 16, false, true);
}

static int setup_event_idx(void **state)
{
	(void)state;
	return vqt_init(&t, MEM, 16, true, true);
}

static int teardown(void **state)
{
	(void)state;
	vqt_free(&t);
	return 0;
}

static void simple_chain(void **state)
{
	(void)state;
	assert_int_equal(vqt_pop(&t), VQ_EMPTY);
	vqt_set(&t, 3, VQT_BUF, 16, F_NEXT, 7);
	vqt_set(&t, 7, VQT_BUF + 0x1000, 512, F_NEXT | F_W, 1);
	vqt_set(&t, 1, VQT_BUF + 0x2000, 1, F_W, 0);
	vqt_offer(&t, 3);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.head, 3);
	assert_int_equal(t.c.nr_out, 1);
	assert_int_equal(t.c.nr_in, 2);
	assert_int_equal(t.c.out_len, 16);
	assert_int_equal(t.c.in_len, 513);
	assert_ptr_equal(t.iov[0].iov_base, t.mem.host + VQT_BUF);
	assert_ptr_equal(t.iov[1].iov_base, t.mem.host + VQT_BUF + 0x1000);
	assert_int_equal(t.iov[2].iov_len, 1);
	assert_int_equal(vqt_pop(&t), VQ_EMPTY);
	assert_int_equal(t.st.last_avail, 1);
}

/* A bad chain is consumed (its head is returned), and the next one works. */
static void bad_then_good(uint16_t bad_head)
{
	vqt_offer(&t, bad_head);
	vqt_set(&t, 15, VQT_BUF, 64, 0, 0);
	vqt_offer(&t, 15);
	assert_int_equal(vqt_pop(&t), VQ_BAD_CHAIN);
	assert_int_equal(t.c.head, bad_head);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.head, 15);
	assert_int_equal(vqt_pop(&t), VQ_EMPTY);
}

static void loops(void **state)
{
	(void)state;
	vqt_set(&t, 0, VQT_BUF, 8, F_NEXT, 0); /* self-loop */
	bad_then_good(0);
	vqt_set(&t, 0, VQT_BUF, 8, F_NEXT, 1);
	vqt_set(&t, 1, VQT_BUF, 8, F_NEXT, 2);
	vqt_set(&t, 2, VQT_BUF, 8, F_NEXT, 0); /* 0 -> 1 -> 2 -> 0 */
	bad_then_good(0);
	/* Zero-length descriptors take no iov slot: the bound still holds. */
	vqt_set(&t, 4, 0, 0, F_NEXT, 5);
	vqt_set(&t, 5, 0, 0, F_NEXT, 4);
	bad_then_good(4);
}

static void bad_addresses(void **state)
{
	(void)state;
	static const struct {
		uint64_t addr;
		uint32_t len;
	} cases[] = {
		{ MEM, 1 },                  /* just past RAM */
		{ MEM - 8, 16 },             /* straddles the end */
		{ VQT_BUF, 0xffffffff },     /* huge */
		{ MMIO_HOLE_START, 4 },      /* the hole */
		{ 0xffffffffffffff00ULL, 0x200 }, /* wraps */
		{ 0xfffffffffffffff0ULL, 0x10 },  /* ends exactly at 2^64 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vqt_set(&t, 2, VQT_BUF, 16, F_NEXT, 6);
		vqt_set(&t, 6, cases[i].addr, cases[i].len, F_W, 0);
		bad_then_good(2);
	}
}

static void next_out_of_range(void **state)
{
	(void)state;
	vqt_set(&t, 9, VQT_BUF, 16, F_NEXT, 16);
	bad_then_good(9);
	vqt_set(&t, 9, VQT_BUF, 16, F_NEXT, 0xffff);
	bad_then_good(9);
}

static void readable_after_writable(void **state)
{
	(void)state;
	vqt_set(&t, 0, VQT_BUF, 16, F_W | F_NEXT, 1);
	vqt_set(&t, 1, VQT_BUF, 16, 0, 0);
	bad_then_good(0);
}

static void zero_length_buffers(void **state)
{
	(void)state;
	/* Ignored, even with an address that is not RAM: no byte is touched. */
	vqt_set(&t, 0, VQT_BUF, 16, F_NEXT, 1);
	vqt_set(&t, 1, 0xdead00000000ULL, 0, F_NEXT, 2);
	vqt_set(&t, 2, VQT_BUF + 16, 0, F_NEXT | F_W, 3);
	vqt_set(&t, 3, VQT_BUF + 32, 1, F_W, 0);
	vqt_offer(&t, 0);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.nr_out, 1);
	assert_int_equal(t.c.nr_in, 1);
	assert_int_equal(t.c.in_len, 1);
	/* An all-empty chain is valid and has no segments. */
	vqt_set(&t, 4, 0, 0, 0, 0);
	vqt_offer(&t, 4);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.nr_out + t.c.nr_in, 0);
}

static void avail_index_runs_ahead(void **state)
{
	(void)state;
	vqt_set(&t, 0, VQT_BUF, 16, 0, 0);
	vqt_avail(&t)->idx = 17; /* 17 new entries in a 16-entry ring */
	assert_int_equal(vqt_pop(&t), VQ_BROKEN);
	vqt_avail(&t)->idx = 0xffff; /* "behind": as far ahead, mod 2^16 */
	assert_int_equal(vqt_pop(&t), VQ_BROKEN);
	vqt_avail(&t)->idx = 16; /* exactly a full ring is fine */
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
}

static void head_out_of_range(void **state)
{
	(void)state;
	vqt_offer(&t, 16);
	assert_int_equal(vqt_pop(&t), VQ_BROKEN);
	assert_int_equal(t.st.last_avail, 0);
}

static void indirect(void **state)
{
	(void)state;
	uint64_t table = VQT_BUF + 0x8000;
	vqt_set_at(&t, table, 0, VQT_BUF, 16, F_NEXT, 2);
	vqt_set_at(&t, table, 2, VQT_BUF + 0x100, 4096, F_NEXT | F_W, 1);
	vqt_set_at(&t, table, 1, VQT_BUF + 0x2000, 1, F_W, 0);
	/* A direct descriptor, then the indirect one (2.7.5.3.2). */
	vqt_set(&t, 5, VQT_BUF + 0x4000, 8, F_NEXT, 6);
	vqt_set(&t, 6, table, 3 * 16, F_IND | F_W /* W is ignored here */, 0);
	vqt_offer(&t, 5);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.nr_out, 2);
	assert_int_equal(t.c.nr_in, 2);
	assert_int_equal(t.c.out_len, 24);
	assert_int_equal(t.c.in_len, 4097);
	assert_ptr_equal(t.iov[1].iov_base, t.mem.host + VQT_BUF);
}

static void bad_indirect(void **state)
{
	(void)state;
	uint64_t table = VQT_BUF + 0x8000, inner = VQT_BUF + 0x9000;
	vqt_set_at(&t, inner, 0, VQT_BUF, 16, 0, 0);
	vqt_set_at(&t, table, 0, VQT_BUF, 16, F_NEXT, 1);
	vqt_set_at(&t, table, 1, inner, 16, F_IND, 0); /* indirect inside indirect */
	vqt_set(&t, 0, table, 32, F_IND, 0);
	bad_then_good(0);
	static const struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
	} cases[] = {
		{ VQT_BUF + 0x8000, 24, F_IND },           /* not a multiple of 16 */
		{ VQT_BUF + 0x8000, 0, F_IND },            /* empty */
		{ VQT_BUF + 0x8000, 17 * 16, F_IND },      /* longer than the queue */
		{ VQT_BUF + 0x8000, 0xfffffff0, F_IND },   /* huge */
		{ MEM - 16, 32, F_IND },                   /* table past RAM */
		{ 0xfffffffffffffff0ULL, 32, F_IND },      /* table wraps */
		{ VQT_BUF + 0x8000, 32, F_IND | F_NEXT },  /* INDIRECT with NEXT */
	};
	vqt_set_at(&t, table, 0, VQT_BUF, 16, F_NEXT, 1);
	vqt_set_at(&t, table, 1, VQT_BUF, 16, 0, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vqt_set(&t, 0, cases[i].addr, cases[i].len, cases[i].flags, 1);
		bad_then_good(0);
	}
	/* next inside the table beyond its length, and a loop inside it */
	vqt_set_at(&t, table, 1, VQT_BUF, 16, F_NEXT, 2);
	vqt_set(&t, 0, table, 32, F_IND, 0);
	bad_then_good(0);
	vqt_set_at(&t, table, 1, VQT_BUF, 16, F_NEXT, 0);
	bad_then_good(0);
	/* direct + indirect together longer than the queue */
	vqt_set_at(&t, table, 1, VQT_BUF, 16, 0, 0);
	vqt_set(&t, 0, VQT_BUF, 16, F_NEXT, 1);
	vqt_set(&t, 1, table, 16 * 16, F_IND, 0);
	bad_then_good(0);
}

/* A full-size indirect table is a chain as long as the queue: fine (the
 * descriptor pointing at it is not a buffer). */
static void indirect_full_queue(void **state)
{
	(void)state;
	uint64_t table = VQT_BUF + 0x8000;
	for (uint16_t i = 0; i < 16; i++)
		vqt_set_at(&t, table, i, VQT_BUF + 16ULL * i, 16, i < 15 ? F_NEXT : F_W,
			   (uint16_t)(i + 1));
	vqt_set(&t, 0, table, 16 * 16, F_IND, 0);
	vqt_offer(&t, 0);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.nr_out + t.c.nr_in, 16);
	/* one direct buffer more is one too many */
	vqt_set(&t, 1, VQT_BUF, 16, F_NEXT, 0);
	vqt_set(&t, 0, table, 16 * 16, F_IND, 0);
	vqt_set(&t, 2, VQT_BUF, 16, F_NEXT, 3);
	vqt_set(&t, 3, table, 16 * 16, F_IND, 0);
	bad_then_good(2);
}

static void indirect_not_negotiated(void **state)
{
	(void)state;
	t.vq.indirect = false;
	vqt_set_at(&t, VQT_BUF, 0, VQT_BUF + 0x100, 16, 0, 0);
	vqt_set(&t, 0, VQT_BUF, 16, F_IND, 0);
	bad_then_good(0);
}

static void too_many_segments(void **state)
{
	(void)state;
	for (uint16_t i = 0; i < 5; i++)
		vqt_set(&t, i, VQT_BUF + 64ULL * i, 64, i < 4 ? F_NEXT : 0, (uint16_t)(i + 1));
	t.c.max_iov = 4;
	bad_then_good(0);
	t.c.max_iov = 5;
	vqt_offer(&t, 0);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(t.c.nr_out, 5);
}

/* Total length above 4 GiB, with descriptors that overlap one buffer. */
static void chain_over_4gib(void **state)
{
	(void)state;
	struct vqt big;
	assert_int_equal(vqt_init(&big, MMIO_HOLE_START, 16, false, true), 0);
	for (uint16_t i = 0; i < 3; i++)
		vqt_set(&big, i, VQT_BUF, 0x60000000, i < 2 ? F_NEXT : 0, (uint16_t)(i + 1));
	vqt_offer(&big, 0);
	assert_int_equal(vqt_pop(&big), VQ_BAD_CHAIN);
	vqt_set(&big, 1, VQT_BUF, 0x60000000, 0, 0);
	vqt_offer(&big, 0);
	assert_int_equal(vqt_pop(&big), VQ_CHAIN);
	assert_int_equal(big.c.out_len, 0xc0000000ULL);
	vqt_free(&big);
}

static void enable_checks(void **state)
{
	(void)state;
	struct vq_state st = { .desc_addr = VQT_DESC, .avail_addr = VQT_AVAIL,
			       .used_addr = VQT_USED, .size = 16 };
	struct virtqueue vq;
	const char *why = NULL;
	assert_int_equal(vq_enable(&vq, &st, &t.mem, 16, false, false, "q", &why), 0);
	struct vq_state bad[] = { st, st, st, st, st, st, st, st, st };
	bad[0].size = 0;
	bad[1].size = 12;
	bad[2].size = 32; /* above the maximum */
	bad[3].desc_addr = VQT_DESC + 8;
	bad[4].avail_addr = VQT_AVAIL + 1;
	bad[5].used_addr = VQT_USED + 2;
	bad[6].desc_addr = MEM - 16 * 8; /* table runs past RAM */
	bad[7].used_addr = MEM - 4;
	bad[8].avail_addr = 0xfffffffffffffffeULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(vq_enable(&vq, &bad[i], &t.mem, 16, false, false, "q", &why), -1);
		assert_non_null(why);
		assert_false(vq_enabled(&vq));
	}
}

static void used_ring(void **state)
{
	(void)state;
	struct vring_used *u = vqt_used(&t);
	assert_false(vq_publish(&t.vq));
	vq_push(&t.vq, 3, 100);
	vq_push(&t.vq, 7, 0);
	assert_int_equal(u->idx, 0); /* not visible before publication */
	assert_true(vq_publish(&t.vq));
	assert_int_equal(u->idx, 2);
	assert_int_equal(u->ring[0].id, 3);
	assert_int_equal(u->ring[0].len, 100);
	assert_int_equal(u->ring[1].id, 7);
	assert_false(vq_publish(&t.vq));
	/* wraps around the ring */
	for (unsigned i = 0; i < 20; i++)
		vq_push(&t.vq, (uint16_t)i, i);
	assert_true(vq_publish(&t.vq));
	assert_int_equal(u->idx, 22);
	assert_int_equal(u->ring[21 % 16].id, 19);
}

static void interrupts_without_event_idx(void **state)
{
	(void)state;
	vq_push(&t.vq, 0, 0);
	vq_publish(&t.vq);
	assert_true(vq_need_interrupt(&t.vq));
	vqt_avail(&t)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(vq_need_interrupt(&t.vq));
}

static void interrupts_with_event_idx(void **state)
{
	(void)state;
	*vqt_used_event(&t) = 2; /* interrupt once used idx passes 2 */
	vqt_avail(&t)->flags = VRING_AVAIL_F_NO_INTERRUPT; /* ignored with EVENT_IDX */
	vq_push(&t.vq, 0, 0);
	vq_publish(&t.vq);
	assert_true(vq_need_interrupt(&t.vq)); /* the first decision always signals */
	vq_push(&t.vq, 0, 0);
	vq_publish(&t.vq);
	assert_false(vq_need_interrupt(&t.vq)); /* idx 2: event 2 not yet passed */
	vq_push(&t.vq, 0, 0);
	vq_push(&t.vq, 0, 0);
	vq_publish(&t.vq);
	assert_true(vq_need_interrupt(&t.vq)); /* 2 -> 4 passes entry 2 */
	vq_push(&t.vq, 0, 0);
	vq_publish(&t.vq);
	assert_false(vq_need_interrupt(&t.vq));
}

static void notify_suppression(void **state)
{
	(void)state;
	vq_disable_notify(&t.vq);
	assert_int_equal(vqt_used(&t)->flags, VRING_USED_F_NO_NOTIFY);
	assert_false(vq_enable_notify(&t.vq));
	assert_int_equal(vqt_used(&t)->flags, 0);
	vqt_set(&t, 0, VQT_BUF, 8, 0, 0);
	vqt_offer(&t, 0);
	assert_true(vq_enable_notify(&t.vq)); /* a buffer slipped in */
}

static void notify_suppression_event_idx(void **state)
{
	(void)state;
	vqt_set(&t, 0, VQT_BUF, 8, 0, 0);
	vqt_offer(&t, 0);
	vqt_offer(&t, 0);
	vq_disable_notify(&t.vq);
	assert_int_equal(vqt_used(&t)->flags, 0); /* flags unused with EVENT_IDX */
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_true(vq_enable_notify(&t.vq));
	assert_int_equal(*vqt_avail_event(&t), 1);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_false(vq_enable_notify(&t.vq));
	assert_int_equal(*vqt_avail_event(&t), 2);
}

static void need_event_math(void **state)
{
	(void)state;
	assert_true(vq_need_event(0, 1, 0));
	assert_false(vq_need_event(1, 1, 0));
	assert_true(vq_need_event(5, 10, 3));
	assert_false(vq_need_event(10, 10, 3));
	assert_true(vq_need_event(0xffff, 2, 0xfffe)); /* across the wrap */
	assert_false(vq_need_event(0xfffd, 2, 0xfffe));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TE(fn) cmocka_unit_test_setup_teardown(fn, setup_event_idx, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(simple_chain),
		T(loops),
		T(bad_addresses),
		T(next_out_of_range),
		T(readable_after_writable),
		T(zero_length_buffers),
		T(avail_index_runs_ahead),
		T(head_out_of_range),
		T(indirect),
		T(bad_indirect),
		T(indirect_full_queue),
		T(indirect_not_negotiated),
		T(too_many_segments),
		T(chain_over_4gib),
		T(enable_checks),
		T(used_ring),
		T(interrupts_without_event_idx),
		TE(interrupts_with_event_idx),
		T(notify_suppression),
		TE(notify_suppression_event_idx),
		T(need_event_math),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
