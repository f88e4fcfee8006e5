/*
 * `migtest`: memory (and optionally disk) that must come through a
 * snapshot or a live migration intact, while the guest keeps changing it.
 *
 * guest.mig_mib=N MiB (default 16) of RAM are pages that each hold
 * (index, generation, data derived from both, checksum). The guest
 * rewrites guest.dirty_mib_s=N MiB per second of them with the next
 * generation (default 0: none), and verifies every page, over and over,
 * against the generation it last wrote (a table in RAM too). With
 * guest.mig_disk_mib=N, the first N MiB of the first virtio-blk disk are
 * kept the same way, a block rewritten and one verified every 10 ms.
 *
 * Prints "MIGTEST ready mib=N" once everything is written, then every
 * guest.mig_report_ms (default 100) "MIGTEST pass=P dirtied_mib=D
 * disk_pass=Q ns=T" (P: whole
 * verification passes over RAM so far). A page or block that differs
 * ends the test: "TEST migtest FAIL: page ...". guest.mig_secs=N: pass
 * after N seconds of guest time; otherwise run until the host stops it.
 */
#include "blk.h"
#include "guest.h"

#define PAGE 4096ULL
#define PAGE_WORDS (PAGE / 8)
#define DISK_PERIOD_NS 10000000ULL
#define MAX_BURST_NS 100000000ULL /* after a pause, do not catch up more than this */

static struct {
	uint64_t mib, dirty_mib_s, disk_mib, secs, report_ms;
} mopt = {.mib = 16, .report_ms = 100};

bool parse_migtest_option(const char *key, const char *val)
{
	uint64_t v;
	if (!val || !parse_u64(val, &v))
		return false;
	if (!strcmp(key, "mig_mib") && v >= 1 && v <= 65536)
		mopt.mib = v;
	else if (!strcmp(key, "dirty_mib_s") && v <= 100000)
		mopt.dirty_mib_s = v;
	else if (!strcmp(key, "mig_disk_mib") && v <= 65536)
		mopt.disk_mib = v;
	else if (!strcmp(key, "mig_secs") && v <= 86400)
		mopt.secs = v;
	else if (!strcmp(key, "mig_report_ms") && v >= 1 && v <= 60000)
		mopt.report_ms = v;
	else
		return false;
	return true;
}

struct mt {
	uint64_t *pages; /* npages pages of PAGE bytes */
	uint32_t *gens;	 /* generation of each page */
	uint64_t npages, dirty_cursor, check_cursor, dirtied, passes;
	uint64_t dirty_last, credit; /* pacing (dirty()) */
	struct blkdev disk;
	uint64_t *block; /* one block's buffer */
	uint32_t *dgens; /* generation of each disk block */
	uint64_t nblocks, disk_w, disk_r, disk_passes, disk_next;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Page `index` of generation `gen`: index, gen, data, then the sum of
 * the words before the last. */
static void fill(uint64_t *w, uint64_t index, uint32_t gen)
{
	uint64_t s = mix(index * 0x9E3779B97F4A7C15ULL ^ gen), sum = 0;
	w[0] = index;
	w[1] = gen;
	for (unsigned i = 2; i < PAGE_WORDS - 1; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		w[i] = s;
	}
	for (unsigned i = 0; i < PAGE_WORDS - 1; i++)
		sum += w[i];
	w[PAGE_WORDS - 1] = sum;
}

static bool check(const uint64_t *w, uint64_t index, uint32_t gen, const char *what, char *why,
		  size_t n)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < PAGE_WORDS - 1; i++)
		sum += w[i];
	uint64_t s = mix(index * 0x9E3779B97F4A7C15ULL ^ gen);
	s ^= s << 13, s ^= s >> 7, s ^= s << 17;
	if (w[0] == index && w[1] == gen && sum == w[PAGE_WORDS - 1] && w[2] == s)
		return true;
	snformat(why, n,
		 "%s %llu: holds index %llu generation %llu (checksum %s), expected "
		 "generation %u",
		 what, (unsigned long long)index, (unsigned long long)w[0],
		 (unsigned long long)w[1], sum == w[PAGE_WORDS - 1] ? "ok" : "bad", gen);
	return false;
}

static void rewrite(struct mt *m, uint64_t i)
{
	m->gens[i]++;
	fill(m->pages + i * PAGE_WORDS, i, m->gens[i]);
	m->dirtied++;
}

/* Rewrite what the dirty rate allows since the last call (credit in
 * page-nanoseconds, so no rate is lost to rounding). */
static void dirty(struct mt *m, uint64_t now)
{
	if (!mopt.dirty_mib_s)
		return;
	uint64_t per_s = mopt.dirty_mib_s * (1ULL << 20) / PAGE, dt = now - m->dirty_last;
	if (dt > MAX_BURST_NS)
		dt = MAX_BURST_NS; /* after a pause: no catching up */
	m->dirty_last = now;
	m->credit += per_s * dt;
	for (; m->credit >= 1000000000ULL; m->credit -= 1000000000ULL) {
		rewrite(m, m->dirty_cursor);
		m->dirty_cursor = (m->dirty_cursor + 1) % m->npages;
	}
}

static bool verify_some(struct mt *m, unsigned count, char *why, size_t n)
{
	for (unsigned k = 0; k < count; k++) {
		uint64_t i = m->check_cursor;
		if (!check(m->pages + i * PAGE_WORDS, i, m->gens[i], "page", why, n))
			return false;
		if (++m->check_cursor == m->npages) {
			m->check_cursor = 0;
			m->passes++;
		}
	}
	return true;
}

/* ---- disk ---- */

static bool disk_io(struct mt *m, uint32_t type, uint64_t block, char *why, size_t n)
{
	int st = blk_request(&m->disk, type, block * (PAGE / 512), m->block, PAGE, LAYOUT_SIMPLE);
	if (st == VBLK_S_OK)
		return true;
	snformat(why, n, "disk %s of block %llu: status %d", type == VBLK_T_IN ? "read" : "write",
		 (unsigned long long)block, st);
	return false;
}

static bool disk_write(struct mt *m, uint64_t b, char *why, size_t n)
{
	m->dgens[b]++;
	fill(m->block, b, m->dgens[b]);
	return disk_io(m, VBLK_T_OUT, b, why, n);
}

static bool disk_open(struct mt *m, char *why, size_t n)
{
	if (!mopt.disk_mib)
		return true;
	m->nblocks = mopt.disk_mib * (1ULL << 20) / PAGE;
	m->block = galloc(PAGE, PAGE);
	m->dgens = galloc(m->nblocks * 4, 8);
	if (!m->block || !m->dgens || !blk_open(&m->disk, 0, 0, why, n))
		return m->block && m->dgens ? false : (snformat(why, n, "out of memory"), false);
	if (m->disk.capacity < m->nblocks * (PAGE / 512)) {
		snformat(why, n, "the disk is smaller than %llu MiB",
			 (unsigned long long)mopt.disk_mib);
		return false;
	}
	for (uint64_t b = 0; b < m->nblocks; b++)
		if (!disk_write(m, b, why, n))
			return false;
	return true;
}

/* Every DISK_PERIOD_NS: rewrite one block, read one back and check it. */
static bool disk_step(struct mt *m, uint64_t now, char *why, size_t n)
{
	if (!m->nblocks || now < m->disk_next)
		return true;
	m->disk_next = now + DISK_PERIOD_NS;
	uint64_t w = m->disk_w++ % m->nblocks, r = m->disk_r;
	if (!disk_write(m, w, why, n) || !disk_io(m, VBLK_T_IN, r, why, n) ||
	    !check(m->block, r, m->dgens[r], "disk block", why, n))
		return false;
	if (++m->disk_r == m->nblocks) {
		m->disk_r = 0;
		m->disk_passes++;
	}
	return true;
}

/* ---- the test ---- */

static bool setup(struct mt *m, char *why, size_t n)
{
	m->npages = mopt.mib * (1ULL << 20) / PAGE;
	m->pages = galloc(m->npages * PAGE, 2ULL << 20);
	m->gens = galloc(m->npages * 4, PAGE);
	if (!m->pages || !m->gens) {
		snformat(why, n, "no room for %llu MiB of test pages",
			 (unsigned long long)mopt.mib);
		return false;
	}
	for (uint64_t i = 0; i < m->npages; i++)
		rewrite(m, i);
	m->dirtied = 0;
	return disk_open(m, why, n);
}

bool test_migtest(char *why, size_t n)
{
	/* Not in .bss: ring 0 clears that, one emulated instruction at a time. */
	struct mt *m = galloc(sizeof(*m), 64);
	if (!m) {
		snformat(why, n, "out of memory");
		return false;
	}
	if (kvmclock_init()) {
		snformat(why, n, "no kvmclock");
		return false;
	}
	if (!setup(m, why, n))
		return false;
	print("MIGTEST ready mib=%llu disk_mib=%llu\n", (unsigned long long)mopt.mib,
	      (unsigned long long)mopt.disk_mib);
	uint64_t start = kvmclock_ns(), next_report = start;
	m->dirty_last = start;
	for (;;) {
		uint64_t now = kvmclock_ns();
		dirty(m, now);
		if (!verify_some(m, 64, why, n) || !disk_step(m, now, why, n))
			return false;
		if (now >= next_report) {
			print("MIGTEST pass=%llu dirtied_mib=%llu disk_pass=%llu ns=%llu\n",
			      (unsigned long long)m->passes,
			      (unsigned long long)(m->dirtied * PAGE >> 20),
			      (unsigned long long)m->disk_passes, (unsigned long long)now);
			next_report = now + mopt.report_ms * 1000000ULL;
		}
		if (mopt.secs && now - start >= mopt.secs * 1000000000ULL)
			return true;
	}
}
