/*
 * virtio-balloon: --balloon parsing; page lists, free page reports and
 * statistics buffers taken apart over crafted chains (PFNs outside RAM,
 * in the hole, straddling buffers, odd lengths, writable or huge lists);
 * and the whole device driven through its MMIO window: inflate really
 * gives memory back (the memfd's blocks drop, the pages read zero),
 * malicious rings never hurt it, statistics are held and returned on the
 * timer, the host's target raises a configuration interrupt, and only
 * `actual` is the driver's to write.
 */
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "config.h"
#include "devtest.h"
#include "virtio/balloon.h"
#include "virtio/balloon_config.h"
#include "virtio/state.h"
#include "vqtest.h"

#define PAGE BALLOON_PAGE_SIZE

/* ---- --balloon values ---- */

static void parse_good(void **state)
{
	(void)state;
	struct balloon_config c;
	char why[160];
	assert_true(balloon_config_parse("size=0", &c, why, sizeof(why)));
	assert_true(c.enabled);
	assert_int_equal(c.amount_mib, 0);
	assert_false(c.deflate_on_oom || c.free_page_reporting || c.stats_interval_s);
	assert_true(balloon_config_parse(
	    "free_page_reporting,stats=65535,deflate_on_oom,size=1048576", &c, why, sizeof(why)));
	assert_int_equal(c.amount_mib, 1048576);
	assert_int_equal(c.stats_interval_s, 65535);
	assert_true(c.deflate_on_oom && c.free_page_reporting);
}

static void parse_bad(void **state)
{
	(void)state;
	static const struct {
		const char *arg, *why;
	} cases[] = {
	    {"", "empty value"},
	    {"deflate_on_oom", "size=MIB is required"},
	    {"size=", "bad size ''"},
	    {"size=x", "bad size 'x'"},
	    {"size=-1", "bad size '-1'"},
	    {"size=+1", "bad size '+1'"},
	    {"size=1048577", "bad size '1048577'"},
	    {"size=99999999999", "bad size"},
	    {"size=1,size=2", "'size' given twice"},
	    {"size=1,stats=65536", "bad stats interval '65536'"},
	    {"size=1,stats=", "bad stats interval"},
	    {"size=1,stats", "unknown option 'stats'"},
	    {"size", "unknown option 'size'"},
	    {"size=1,deflate_on_oom=1", "unknown option 'deflate_on_oom=1'"},
	    {"size=1,,deflate_on_oom", "empty option"},
	    {"size=1,", "empty option"},
	    {"size=1,hinting", "unknown option 'hinting'"},
	    {"size=1,deflate_on_oom,deflate_on_oom", "'deflate_on_oom' given twice"},
	};
	struct balloon_config c;
	char why[160];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (balloon_config_parse(cases[i].arg, &c, why, sizeof(why)))
			fail_msg("'%s' accepted", cases[i].arg);
		if (!strstr(why, cases[i].why))
			fail_msg("'%s': \"%s\", expected \"%s\"", cases[i].arg, why, cases[i].why);
	}
}

static void cli_once(void **state)
{
	(void)state;
	struct vm_config cfg;
	char out[512];
	vm_config_init(&cfg);
	FILE *err = fmemopen(out, sizeof(out), "w");
	assert_true(cli_parse_balloon("size=4", &cfg, err));
	assert_false(cli_parse_balloon("size=5", &cfg, err));
	assert_false(cli_parse_balloon("size=z", &cfg, err));
	fclose(err);
	assert_non_null(strstr(out, "vmm: --balloon: given twice at 'size=5'"));
	assert_int_equal(cfg.balloon.amount_mib, 4);
	vm_config_free(&cfg);
	vm_config_init(&cfg);
	err = fmemopen(out, sizeof(out), "w");
	assert_false(cli_parse_balloon("size=z", &cfg, err));
	fclose(err);
	assert_non_null(strstr(out, "vmm: --balloon: invalid value 'size=z' (bad size 'z'"));
	assert_non_null(strstr(out, "expected " BALLOON_SYNTAX ")"));
	assert_false(cfg.balloon.enabled);
}

/* ---- page lists, reports, statistics over hand-made chains ---- */

/* 3 GiB of low RAM and 64 MiB above 4 GiB: only touched pages cost. */
#define BIG_RAM (3 * GIB + 64 * MIB)

struct pl {
	struct guest_mem m;
	uint8_t buf[4 * 65540];
	struct iovec iov[8];
	struct vq_chain c;
	struct balloon_pages_result r;
};

static int pl_setup(void **state)
{
	struct pl *p = calloc(1, sizeof(*p));
	if (!p || guest_mem_init(&p->m, BIG_RAM, 0) < 0)
		return -1;
	*state = p;
	return 0;
}

static int pl_teardown(void **state)
{
	struct pl *p = *state;
	guest_mem_destroy(&p->m);
	free(p);
	return 0;
}

/* The chain: buf split into readable pieces of the given lengths. */
static void chain(struct pl *p, const size_t *lens, unsigned n)
{
	size_t off = 0;
	p->c = (struct vq_chain){.iov = p->iov, .max_iov = 8, .nr_out = (uint16_t)n};
	for (unsigned i = 0; i < n; i++) {
		p->iov[i] = (struct iovec){p->buf + off, lens[i]};
		off += lens[i];
		p->c.out_len += lens[i];
	}
}

static void pfns(struct pl *p, const uint32_t *v, unsigned n)
{
	memcpy(p->buf, v, n * sizeof(*v));
	size_t len = n * sizeof(*v);
	chain(p, &len, 1);
}

static void fill(struct guest_mem *m, uint64_t gpa, uint64_t len, uint8_t v)
{
	memset(guest_ptr(m, gpa, len), v, len);
}

static bool is_zero(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = guest_ptr(m, gpa, len);
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Bytes the memfd really holds. */
static uint64_t resident(const struct guest_mem *m)
{
	struct stat st;
	assert_int_equal(fstat(m->memfd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void inflate_gives_memory_back(void **state)
{
	struct pl *p = *state;
	fill(&p->m, 0x100000, 64 * PAGE, 0xaa);
	fill(&p->m, 4 * GIB, 4 * PAGE, 0xbb);
	uint64_t before = resident(&p->m);
	/* A run of 8, two lone pages (one above 4 GiB), a repeat. */
	uint32_t v[] = {0x100, 0x101, 0x102, 0x103,    0x104, 0x105,
			0x106, 0x107, 0x120, 0x100001, 0x120};
	pfns(p, v, 11);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_null(p->r.why);
	assert_int_equal(p->r.valid, 11);
	assert_int_equal(p->r.bad, 0);
	assert_int_equal(p->r.errors, 0);
	assert_int_equal(before - resident(&p->m), 10 * PAGE);
	assert_true(is_zero(&p->m, 0x100000, 8 * PAGE));
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x108000, 1), 0xaa); /* neighbours stay */
	assert_true(is_zero(&p->m, 0x120000, PAGE));
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x11f000 + PAGE - 1, 1), 0xaa);
	assert_true(is_zero(&p->m, 4 * GIB + PAGE, PAGE));
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 4 * GIB, 1), 0xbb);
	/* Deflate touches nothing, only counts. */
	fill(&p->m, 0x100000, PAGE, 0xcc);
	pfns(p, v, 1);
	balloon_pfn_chain(&p->m, &p->c, false, &p->r);
	assert_int_equal(p->r.valid, 1);
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x100000, 1), 0xcc);
}

static void pfns_outside_ram(void **state)
{
	struct pl *p = *state;
	fill(&p->m, 0, 4 * PAGE, 0xaa);
	uint32_t v[] = {
	    0xc0000,			/* the hole's first page */
	    0xd0000,			/* the virtio-mmio windows */
	    0xfee00,			/* the LAPIC */
	    0xfffff,			/* the hole's last page */
	    0x100000 + 0x4000,		/* just past high RAM */
	    0xffffffff,			/* ~16 TiB */
	    0x1,			/* RAM: the only good one */
	    (uint32_t)(3 * GIB / PAGE), /* = 0xc0000 again, by another name */
	};
	pfns(p, v, 8);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_null(p->r.why);
	assert_int_equal(p->r.valid, 1);
	assert_int_equal(p->r.bad, 7);
	assert_true(is_zero(&p->m, PAGE, PAGE));
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0, 1), 0xaa);
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 2 * PAGE, 1), 0xaa);
	/* The last pages of each region are fine. */
	uint32_t edge[] = {(uint32_t)(3 * GIB / PAGE - 1), 0x100000 + 0x3fff};
	pfns(p, edge, 2);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_int_equal(p->r.valid, 2);
}

/* Any layout: PFNs may straddle buffers. */
static void pfns_straddle_buffers(void **state)
{
	struct pl *p = *state;
	fill(&p->m, 0x200000, 3 * PAGE, 0xaa);
	uint32_t v[] = {0x200, 0x202, 0x201};
	memcpy(p->buf, v, sizeof(v));
	size_t lens[] = {1, 5, 2, 0, 4};
	chain(p, lens, 5);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_null(p->r.why);
	assert_int_equal(p->r.valid, 3);
	assert_true(is_zero(&p->m, 0x200000, 3 * PAGE));
}

static void page_lists_refused(void **state)
{
	struct pl *p = *state;
	fill(&p->m, 0x300000, PAGE, 0xaa);
	uint32_t v[] = {0x300, 0x300};
	pfns(p, v, 2);
	p->c.out_len = 6;
	p->iov[0].iov_len = 6;
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_string_equal(p->r.why, "page list length not a multiple of 4");
	pfns(p, v, 1);
	p->c.nr_out = 0;
	p->c.nr_in = 1; /* device-writable */
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_string_equal(p->r.why, "device-writable buffer in a page list");
	for (unsigned i = 0; i <= BALLOON_MAX_PFNS; i++)
		memcpy(p->buf + 4 * i, &v[0], 4);
	size_t len = 4 * (BALLOON_MAX_PFNS + 1);
	chain(p, &len, 1);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_string_equal(p->r.why, "page list longer than 65536 PFNs");
	assert_int_equal(p->r.valid, 0);
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x300000, 1), 0xaa);
	/* Exactly the limit is fine; an empty list too. */
	len = 4 * BALLOON_MAX_PFNS;
	chain(p, &len, 1);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_null(p->r.why);
	assert_int_equal(p->r.valid, BALLOON_MAX_PFNS);
	len = 0;
	chain(p, &len, 0);
	balloon_pfn_chain(&p->m, &p->c, true, &p->r);
	assert_null(p->r.why);
	assert_int_equal(p->r.valid, 0);
}

static void reports_give_whole_pages(void **state)
{
	struct pl *p = *state;
	fill(&p->m, 0x400000, 8 * PAGE, 0xaa);
	fill(&p->m, 4 * GIB + 16 * PAGE, 2 * PAGE, 0xbb);
	/* [0x400100, 0x403100): only pages 1 and 2 are whole. */
	p->iov[0] = (struct iovec){guest_ptr(&p->m, 0x400100, 3 * PAGE), 3 * PAGE};
	p->iov[1] = (struct iovec){guest_ptr(&p->m, 4 * GIB + 16 * PAGE, 2 * PAGE), 2 * PAGE};
	p->iov[2] = (struct iovec){guest_ptr(&p->m, 0x406000, 100), 100};
	p->c = (struct vq_chain){.iov = p->iov, .nr_out = 1, .nr_in = 2};
	balloon_report_chain(&p->m, &p->c, &p->r);
	assert_int_equal(p->r.valid, 3);
	assert_int_equal(p->r.errors, 0);
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x400fff, 1), 0xaa);
	assert_true(is_zero(&p->m, 0x401000, 2 * PAGE));
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x403000, 1), 0xaa);
	assert_true(is_zero(&p->m, 4 * GIB + 16 * PAGE, 2 * PAGE));
	assert_int_equal(*(uint8_t *)guest_ptr(&p->m, 0x406000, 1), 0xaa);
}

static void put_stat(uint8_t *at, uint16_t tag, uint64_t val)
{
	memcpy(at, &tag, 2);
	memcpy(at + 2, &val, 8);
}

static void stats_buffers(void **state)
{
	struct pl *p = *state;
	struct virtio_balloon_guest_stats s = {0};
	put_stat(p->buf, VIRTIO_BALLOON_S_MEMFREE, 1000);
	put_stat(p->buf + 10, VIRTIO_BALLOON_S_MEMTOT, 4000);
	put_stat(p->buf + 20, 200, 7); /* a tag from the future */
	put_stat(p->buf + 30, 15, 9);  /* direct_reclaim */
	size_t lens[] = {3, 20, 17};   /* entries straddle buffers */
	chain(p, lens, 3);
	assert_int_equal(balloon_stats_parse(&p->c, &s), 4);
	assert_int_equal(s.valid, (1U << VIRTIO_BALLOON_S_MEMFREE) |
				      (1U << VIRTIO_BALLOON_S_MEMTOT) | (1U << 15));
	assert_int_equal(s.val[VIRTIO_BALLOON_S_MEMFREE], 1000);
	assert_int_equal(s.val[VIRTIO_BALLOON_S_MEMTOT], 4000);
	assert_int_equal(s.val[15], 9);
	assert_int_equal(s.updates, 1);
	assert_string_equal(balloon_stat_name(15), "direct_reclaim");
	assert_string_equal(balloon_stat_name(VIRTIO_BALLOON_S_AVAIL), "available_memory");
	assert_null(balloon_stat_name(16));
	/* A newer buffer replaces the last one: only what it holds is valid. */
	size_t one = 10;
	chain(p, &one, 1);
	assert_int_equal(balloon_stats_parse(&p->c, &s), 1);
	assert_int_equal(s.valid, 1U << VIRTIO_BALLOON_S_MEMFREE);
	assert_int_equal(s.updates, 2);
	/* Malformed: s unchanged. */
	size_t odd = 11, many = 10 * (BALLOON_STATS_MAX_ENTRIES + 1);
	chain(p, &odd, 1);
	assert_int_equal(balloon_stats_parse(&p->c, &s), -1);
	chain(p, &many, 1);
	assert_int_equal(balloon_stats_parse(&p->c, &s), -1);
	chain(p, &one, 1);
	p->c.nr_in = 1;
	assert_int_equal(balloon_stats_parse(&p->c, &s), -1);
	assert_int_equal(s.updates, 2);
	assert_int_equal(s.val[VIRTIO_BALLOON_S_MEMFREE], 1000);
	size_t none = 0;
	chain(p, &none, 0);
	assert_int_equal(balloon_stats_parse(&p->c, &s), 0);
	assert_int_equal(s.valid, 0);
}

/* ---- the whole device, through its MMIO window ---- */

#define QSIZE 16
#define RING(q) (0x100000ULL + 0x10000ULL * (q))
#define BUF 0x200000ULL	   /* page lists, statistics */
#define VICTIM 0x400000ULL /* pages given to the balloon */
#define MEM (16 * MIB)

static struct vm *vm;
static struct virtio_balloon *bal;

static struct vring_desc *desc(unsigned q)
{
	return devtest_gp(vm, RING(q));
}

static struct vring_avail *avail(unsigned q)
{
	return devtest_gp(vm, RING(q) + 0x1000);
}

static struct vring_used *used(unsigned q)
{
	return devtest_gp(vm, RING(q) + 0x2000);
}

static void driver_init(uint64_t features, unsigned nqueues)
{
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(devtest_virtio_features(vm, features), 0xb);
	for (unsigned q = 0; q < nqueues; q++) {
		memset(devtest_gp(vm, RING(q)), 0, 0x3000);
		devtest_virtio_queue(vm, q, QSIZE, RING(q), RING(q) + 0x1000, RING(q) + 0x2000);
	}
	devtest_virtio_driver_ok(vm);
	devtest_pump(vm, 0); /* the kicks DRIVER_OK sends */
}

static int dev_setup_cfg(const struct balloon_config *c)
{
	vm = devtest_vm_new();
	if (guest_mem_init(&vm->mem, MEM, 0) < 0)
		return -1;
	int status = -1;
	bal = virtio_balloon_create(vm, c, 0, &status);
	if (!bal || status)
		return -1;
	return 0;
}

static int setup_full(void **state)
{
	(void)state;
	struct balloon_config c = {.enabled = true,
				   .amount_mib = 4,
				   .stats_interval_s = 1,
				   .deflate_on_oom = true,
				   .free_page_reporting = true};
	if (dev_setup_cfg(&c) < 0)
		return -1;
	driver_init(bal->st.transport.device_features, 4);
	return 0;
}

static int setup_plain(void **state)
{
	(void)state;
	struct balloon_config c = {.enabled = true, .amount_mib = 2};
	if (dev_setup_cfg(&c) < 0)
		return -1;
	driver_init(bal->st.transport.device_features, 2);
	return 0;
}

static int dev_teardown(void **state)
{
	(void)state;
	virtio_balloon_destroy(bal);
	guest_mem_destroy(&vm->mem);
	devtest_vm_free(vm);
	return 0;
}

/* Post desc[q][0..n) as one chain and run the loop until it is used. */
static uint32_t run_chain(unsigned q, uint16_t head)
{
	uint16_t before = used(q)->idx;
	avail(q)->ring[avail(q)->idx % QSIZE] = head;
	avail(q)->idx++;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	for (int i = 0; i < 100 && used(q)->idx == before; i++)
		devtest_pump(vm, 100);
	assert_int_equal((uint16_t)(used(q)->idx - before), 1);
	struct vring_used_elem e = used(q)->ring[before % QSIZE];
	assert_int_equal(e.id, head);
	return e.len;
}

static uint32_t inflate(unsigned q, const uint32_t *v, unsigned n)
{
	memcpy(devtest_gp(vm, BUF), v, n * 4);
	desc(q)[0] = (struct vring_desc){BUF, n * 4, 0, 0};
	return run_chain(q, 0);
}

static struct virtio_balloon_counters counters(void)
{
	struct virtio_balloon_counters c;
	virtio_balloon_get_counters(bal, &c);
	return c;
}

static bool healthy(void)
{
	return !(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void device_config(void **state)
{
	(void)state;
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_ID), 5);
	uint64_t f = bal->st.transport.device_features;
	assert_true(f & (1ULL << VIRTIO_BALLOON_F_STATS_VQ));
	assert_true(f & (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	assert_true(f & (1ULL << VIRTIO_BALLOON_F_REPORTING));
	assert_false(f & (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT));
	assert_false(f & (1ULL << VIRTIO_BALLOON_F_PAGE_POISON));
	assert_false(f & (1ULL << VIRTIO_BALLOON_F_MUST_TELL_HOST));
	/* num_pages, actual, and nothing else offered */
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG), 4 * 256);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + 4), 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + 8), 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 3);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BALLOON_QUEUE_SIZE);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 4);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
}

static void device_plain_features(void **state)
{
	(void)state;
	uint64_t f = bal->st.transport.device_features;
	assert_int_equal(f & 0xffffff, 0); /* no balloon feature bit */
	assert_int_equal(bal->ops.num_queues, 2);
	assert_int_equal(virtio_balloon_queue_role(bal, 2), BALLOON_Q_NONE);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG), 2 * 256);
}

static void device_inflate_deflate(void **state)
{
	(void)state;
	memset(devtest_gp(vm, VICTIM), 0x5a, 16 * PAGE);
	/* The page list's own page, resident before we count. */
	memset(devtest_gp(vm, BUF), 0, PAGE);
	uint64_t before = resident(&vm->mem);
	uint32_t v[] = {VICTIM / PAGE, VICTIM / PAGE + 1, VICTIM / PAGE + 3};
	assert_int_equal(inflate(0, v, 3), 0);
	assert_int_equal(before - resident(&vm->mem), 3 * PAGE);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM), 0);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM + 2 * PAGE), 0x5a);
	assert_int_equal(inflate(1, v, 2), 0);
	assert_int_equal(counters().inflated_pages, 3);
	assert_int_equal(counters().deflated_pages, 2);
	/* The driver reports its balloon's size; only `actual` is writable. */
	devtest_mmio_wr(vm, VIRTIO_MMIO_CONFIG + 4, 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_CONFIG, 99);
	devtest_mmio_wr(vm, VIRTIO_MMIO_CONFIG + 8, 99);
	uint8_t b = 3;
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + 7, &b, 1, true);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG),
			 le32toh(bal->st.config.num_pages));
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG) == 4 * 256 ||
		    devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG) == 2 * 256);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + 4), 0x03000001);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + 8), 0);
	struct virtio_balloon_report r;
	virtio_balloon_get_report(bal, &r);
	assert_int_equal(r.actual_pages, 0x03000001);
	assert_true(healthy());
}

static void device_free_page_report(void **state)
{
	(void)state;
	memset(devtest_gp(vm, VICTIM), 0x5a, 4 * PAGE);
	desc(3)[0] =
	    (struct vring_desc){VICTIM, 2 * PAGE, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
	desc(3)[1] = (struct vring_desc){VICTIM + 3 * PAGE, 100, VRING_DESC_F_WRITE, 0};
	assert_int_equal(run_chain(3, 0), 0);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM + PAGE), 0);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM + 2 * PAGE), 0x5a);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM + 3 * PAGE), 0x5a);
	assert_int_equal(counters().reported_bytes, 2 * PAGE + 100); /* as reported */
}

/* Malformed chains come back empty and the device carries on. */
static void device_malicious(void **state)
{
	(void)state;
	memset(devtest_gp(vm, VICTIM), 0x5a, PAGE);
	uint32_t bad[] = {0xffffffff, MEM / PAGE, 0xc0000, 0xd0000};
	assert_int_equal(inflate(0, bad, 4), 0);
	assert_int_equal(counters().bad_pfns, 4);
	uint32_t v = VICTIM / PAGE;
	memcpy(devtest_gp(vm, BUF), &v, 4);
	desc(0)[0] = (struct vring_desc){BUF, 3, 0, 0};
	assert_int_equal(run_chain(0, 0), 0);
	desc(0)[0] = (struct vring_desc){BUF, 4, VRING_DESC_F_WRITE, 0};
	assert_int_equal(run_chain(0, 0), 0);
	desc(0)[0] = (struct vring_desc){0xfffff000, 4, 0, 0}; /* outside RAM */
	assert_int_equal(run_chain(0, 0), 0);
	desc(0)[0] = (struct vring_desc){BUF, 4, VRING_DESC_F_NEXT, 0}; /* a loop */
	assert_int_equal(run_chain(0, 0), 0);
	for (unsigned i = 0; i <= BALLOON_MAX_PFNS; i++)
		memcpy((uint8_t *)devtest_gp(vm, BUF) + 4 * i, &v, 4);
	desc(0)[0] = (struct vring_desc){BUF, 4 * (BALLOON_MAX_PFNS + 1), 0, 0};
	assert_int_equal(run_chain(0, 0), 0);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM), 0x5a); /* none of them took the page */
	assert_int_equal(counters().bad_chains, 5);
	assert_int_equal(counters().inflated_pages, 0);
	/* Reports: outside RAM, zero length. */
	desc(3)[0] = (struct vring_desc){0x7fff0000000ULL, PAGE, VRING_DESC_F_WRITE, 0};
	assert_int_equal(run_chain(3, 0), 0);
	desc(3)[0] = (struct vring_desc){0xdead000, 0, VRING_DESC_F_WRITE, 0};
	assert_int_equal(run_chain(3, 0), 0);
	/* A notify for a queue that does not exist. */
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	devtest_pump(vm, 0);
	assert_true(healthy());
	/* Still works. */
	assert_int_equal(inflate(0, &v, 1), 0);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM), 0);
	/* A runaway avail index breaks the ring; a reset brings it back. */
	avail(0)->idx = (uint16_t)(avail(0)->idx + QSIZE + 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	devtest_pump(vm, 100);
	assert_false(healthy());
	driver_init(bal->st.transport.device_features, 4);
	assert_int_equal(inflate(0, &v, 1), 0);
	assert_true(healthy());
}

/* Many chains under one notify: all done, BALLOON_BUDGET per pass. */
static void device_batch(void **state)
{
	(void)state;
	uint32_t v = VICTIM / PAGE;
	memcpy(devtest_gp(vm, BUF), &v, 4);
	for (uint16_t i = 0; i < QSIZE; i++) {
		desc(0)[i] = (struct vring_desc){BUF, 4, 0, 0};
		avail(0)->ring[i] = i;
	}
	avail(0)->idx = QSIZE;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 10 && used(0)->idx != QSIZE; i++)
		devtest_pump(vm, 100);
	assert_int_equal(used(0)->idx, QSIZE);
	assert_int_equal(counters().inflated_pages, QSIZE);
}

static void stat_entry(uint64_t gpa, uint16_t tag, uint64_t val)
{
	memcpy(devtest_gp(vm, gpa), &tag, 2);
	memcpy(devtest_gp(vm, gpa + 2), &val, 8);
}

/* The statistics buffer is held, and returned when the host wants more:
 * at once on a new interval, then on the timer. */
static void device_stats(void **state)
{
	(void)state;
	stat_entry(BUF, VIRTIO_BALLOON_S_MEMFREE, 111);
	stat_entry(BUF + 10, VIRTIO_BALLOON_S_MEMTOT, 222);
	desc(2)[0] = (struct vring_desc){BUF, 20, 0, 0};
	avail(2)->ring[0] = 0;
	avail(2)->idx = 1;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	devtest_pump(vm, 0);
	assert_int_equal(used(2)->idx, 0); /* held */
	struct virtio_balloon_report r;
	virtio_balloon_get_report(bal, &r);
	assert_int_equal(r.stats.valid,
			 (1U << VIRTIO_BALLOON_S_MEMFREE) | (1U << VIRTIO_BALLOON_S_MEMTOT));
	assert_int_equal(r.stats.val[VIRTIO_BALLOON_S_MEMTOT], 222);
	assert_int_equal(r.target_pages, 4 * 256);
	char why[128];
	assert_int_equal(virtio_balloon_set_stats_interval(bal, 0, why, sizeof(why)), -1);
	assert_int_equal(virtio_balloon_set_stats_interval(bal, 1, why, sizeof(why)), 0);
	assert_int_equal(used(2)->idx, 1); /* returned at once: "send fresh figures" */
	assert_int_equal(used(2)->ring[0].len, 0);
	/* The driver sends new figures; the timer asks again within 1 s. */
	stat_entry(BUF, VIRTIO_BALLOON_S_MEMFREE, 333);
	avail(2)->ring[1] = 0;
	avail(2)->idx = 2;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	devtest_pump(vm, 0);
	virtio_balloon_get_report(bal, &r);
	assert_int_equal(r.stats.val[VIRTIO_BALLOON_S_MEMFREE], 333);
	assert_int_equal(r.stats.updates, 2);
	for (int i = 0; i < 30 && used(2)->idx == 1; i++)
		devtest_pump(vm, 100);
	assert_int_equal(used(2)->idx, 2);
	/* A second buffer before we asked: the older one goes back. */
	desc(2)[1] = (struct vring_desc){BUF, 7, 0, 0}; /* and it is malformed */
	avail(2)->ring[2] = 0;
	avail(2)->ring[3] = 1;
	avail(2)->idx = 4;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	devtest_pump(vm, 0);
	assert_int_equal(used(2)->idx, 3);
	assert_int_equal(used(2)->ring[2].id, 0);
	assert_int_equal(counters().stats_malformed, 1);
	virtio_balloon_get_report(bal, &r);
	assert_int_equal(r.stats.val[VIRTIO_BALLOON_S_MEMFREE], 333); /* kept */
	/* A reset drops the buffer held: the ring is the driver's again. */
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	assert_false(bal->st.stats_held);
	assert_true(healthy());
}

/* A new target: num_pages changes, ConfigGeneration moves, and the driver
 * gets a configuration interrupt. */
static void device_target(void **state)
{
	(void)state;
	uint32_t gen = devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION);
	devtest_mmio_wr(vm, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	virtio_balloon_set_target(bal, 1234);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG), 1234);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	uint64_t n;
	assert_int_equal(read(bal->vdev.irq_fd, &n, sizeof(n)), sizeof(n));
	struct virtio_balloon_report r;
	virtio_balloon_get_report(bal, &r);
	assert_int_equal(r.target_pages, 1234);
}

/* Linux numbers only the queues that exist: without STATS_VQ the
 * reporting queue is queue 2. */
static void device_queue_numbering(void **state)
{
	(void)state;
	uint64_t f = bal->st.transport.device_features & ~(1ULL << VIRTIO_BALLOON_F_STATS_VQ);
	driver_init(f, 3);
	assert_int_equal(virtio_balloon_queue_role(bal, 2), BALLOON_Q_REPORTING);
	assert_int_equal(virtio_balloon_queue_role(bal, 3), BALLOON_Q_NONE);
	memset(devtest_gp(vm, VICTIM), 0x5a, PAGE);
	desc(2)[0] = (struct vring_desc){VICTIM, PAGE, VRING_DESC_F_WRITE, 0};
	assert_int_equal(run_chain(2, 0), 0);
	assert_int_equal(*(uint8_t *)devtest_gp(vm, VICTIM), 0);
	/* The statistics timer finds no statistics queue: nothing happens. */
	char why[64];
	assert_int_equal(virtio_balloon_set_stats_interval(bal, 1, why, sizeof(why)), 0);
	assert_true(healthy());
	driver_init(bal->st.transport.device_features, 4);
	assert_int_equal(virtio_balloon_queue_role(bal, 2), BALLOON_Q_STATS);
	assert_int_equal(virtio_balloon_queue_role(bal, 3), BALLOON_Q_REPORTING);
}

/* The whole state saves and loads into a device built anew: target,
 * actual, statistics, the buffer held, the queues. */
static void device_save_restore(void **state)
{
	(void)state;
	stat_entry(BUF, VIRTIO_BALLOON_S_MEMTOT, 4242);
	desc(2)[0] = (struct vring_desc){BUF, 10, 0, 0};
	avail(2)->ring[0] = 0;
	avail(2)->idx = 1;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	devtest_pump(vm, 0);
	virtio_balloon_set_target(bal, 777);
	devtest_mmio_wr(vm, VIRTIO_MMIO_CONFIG + 4, 5);
	char why[160];
	size_t size = virtio_state_size(&bal->vdev);
	assert_int_equal(size, sizeof(struct virtio_balloon_state));
	void *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(virtio_state_save(&bal->vdev, buf, size, why, sizeof(why)), 0);
	struct balloon_config c = {.enabled = true, .amount_mib = 4, .stats_interval_s = 1,
				   .deflate_on_oom = true, .free_page_reporting = true};
	int status;
	struct virtio_balloon *b2 = virtio_balloon_create(vm, &c, 1, &status);
	assert_non_null(b2);
	assert_int_equal(virtio_state_restore(&b2->vdev, buf, size, why, sizeof(why)), 0);
	struct virtio_balloon_report r;
	virtio_balloon_get_report(b2, &r);
	assert_int_equal(r.target_pages, 777);
	assert_int_equal(r.actual_pages, 5);
	assert_int_equal(r.stats.val[VIRTIO_BALLOON_S_MEMTOT], 4242);
	assert_true(b2->st.stats_held);
	assert_true(virtio_dev_queue_live(&b2->vdev, 2));
	/* The restored device gives the held buffer back on its rings. */
	assert_int_equal(virtio_balloon_set_stats_interval(b2, 2, why, sizeof(why)), 0);
	assert_int_equal(used(2)->idx, 1);
	/* A device offering other features refuses the state. */
	struct balloon_config other = {.enabled = true, .amount_mib = 4};
	struct virtio_balloon *b3 = virtio_balloon_create(vm, &other, 2, &status);
	assert_non_null(b3);
	assert_int_equal(virtio_state_restore(&b3->vdev, buf, size, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "offered features"));
	virtio_balloon_destroy(b3);
	virtio_balloon_destroy(b2);
	free(buf);
}

#define DEV(fn, s) cmocka_unit_test_setup_teardown(fn, s, dev_teardown)
#define PL(fn) cmocka_unit_test_setup_teardown(fn, pl_setup, pl_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_good),
	    cmocka_unit_test(parse_bad),
	    cmocka_unit_test(cli_once),
	    PL(inflate_gives_memory_back),
	    PL(pfns_outside_ram),
	    PL(pfns_straddle_buffers),
	    PL(page_lists_refused),
	    PL(reports_give_whole_pages),
	    PL(stats_buffers),
	    DEV(device_config, setup_full),
	    DEV(device_plain_features, setup_plain),
	    DEV(device_inflate_deflate, setup_full),
	    DEV(device_inflate_deflate, setup_plain),
	    DEV(device_free_page_report, setup_full),
	    DEV(device_malicious, setup_full),
	    DEV(device_batch, setup_plain),
	    DEV(device_stats, setup_full),
	    DEV(device_target, setup_full),
	    DEV(device_queue_numbering, setup_full),
	    DEV(device_save_restore, setup_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
