/*
 * blk_bench: throughput of one virtio-blk disk. Keeps guest.blk_qd
 * requests of guest.blk_bs bytes in flight for guest.blk_secs seconds:
 * fill the queue, kick once, then refill every completed slot and kick
 * once per batch of completions (EVENT_IDX decides whether a kick is
 * needed at all). Timed with kvmclock (TSC fallback).
 */
#include "blk.h"

struct bench {
	struct blkdev b;
	uint32_t type;
	bool random;
	uint32_t bs;
	uint64_t blocks; /* bs-sized blocks on the disk */
	uint64_t next_seq;
	uint64_t rng;
	uint8_t *bufs;
};

static uint64_t next_block(struct bench *t)
{
	if (!t->random)
		return t->next_seq++ % t->blocks;
	/* xorshift64: cheap, and the same sequence on every VMM */
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng % t->blocks;
}

static void post(struct bench *t, unsigned slot)
{
	struct blk_slot *sl = &t->b.slots[slot];
	uint64_t block = next_block(t);
	sl->hdr = (struct blk_hdr){ t->type, 0, block * (t->bs / 512) };
	sl->status = 0xff;
	struct bseg s[3] = {
		{ (uint64_t)(uintptr_t)&sl->hdr, 16, false },
		{ (uint64_t)(uintptr_t)(t->bufs + (uint64_t)slot * t->bs), t->bs,
		  t->type == VBLK_T_IN },
		{ (uint64_t)(uintptr_t)&sl->status, 1, true },
	};
	blk_post(&t->b, slot, s, 3, false);
}

static bool parse_mode(struct bench *t, char *why, size_t n)
{
	const char *m = opt.blk_bench ? opt.blk_bench : "randread";
	t->random = !strncmp(m, "rand", 4);
	const char *op = m + (t->random ? 4 : 3);
	if ((!t->random && strncmp(m, "seq", 3)) || (strcmp(op, "read") && strcmp(op, "write"))) {
		snformat(why, n, "bad guest.blk_bench=%s (randread|randwrite|seqread|seqwrite)", m);
		return false;
	}
	t->type = strcmp(op, "read") ? VBLK_T_OUT : VBLK_T_IN;
	return true;
}

/* Run until the deadline, then drain. Returns completed requests, or -1. */
static int64_t run(struct bench *t, unsigned qd, uint64_t end, char *why, size_t n)
{
	uint64_t ops = 0;
	unsigned inflight = qd;
	for (unsigned i = 0; i < qd; i++)
		post(t, i);
	vq_kick(&t->b.q);
	uint64_t last_progress = time_ns();
	while (inflight) {
		bool more = time_ns() < end, got = false;
		uint32_t len;
		int id;
		while ((id = vq_used(&t->b.q, &len)) >= 0) {
			unsigned slot = (unsigned)id / t->b.per_slot;
			if (slot >= qd || t->b.slots[slot].status != VBLK_S_OK) {
				snformat(why, n, "request in slot %u failed (status %u)", slot,
					 slot < qd ? t->b.slots[slot].status : 0xffu);
				return -1;
			}
			ops++;
			got = true;
			if (more)
				post(t, slot);
			else
				inflight--;
		}
		if (got) {
			vq_kick(&t->b.q);
			last_progress = time_ns();
		} else if (time_ns() - last_progress > BLK_TIMEOUT_NS) {
			snformat(why, n, "no completion for 10 s (%u in flight)", inflight);
			return -1;
		} else {
			cpu_relax();
		}
	}
	return (int64_t)ops;
}

bool test_blk_bench(char *why, size_t n)
{
	static struct bench t;
	unsigned qd = opt.blk_qd ? (unsigned)opt.blk_qd : 1;
	t.bs = opt.blk_bs ? (uint32_t)opt.blk_bs : 4096;
	uint64_t secs = opt.blk_secs ? opt.blk_secs : 5;
	t.rng = 0x9E3779B97F4A7C15ULL;
	if (!parse_mode(&t, why, n))
		return false;
	if (qd > BLK_SLOTS || t.bs % 512 || t.bs > (1U << 20)) {
		snformat(why, n, "need qd <= %u and bs a multiple of 512 up to 1 MiB", BLK_SLOTS);
		return false;
	}
	if (!blk_open(&t.b, (unsigned)opt.blk_index, 0, why, n))
		return false;
	t.blocks = t.b.capacity / (t.bs / 512);
	t.bufs = galloc((uint64_t)qd * t.bs, 4096);
	if (!t.blocks || !t.bufs) {
		snformat(why, n, "disk smaller than one block, or no memory for %u x %u", qd, t.bs);
		return false;
	}
	uint64_t start = time_ns();
	int64_t ops = run(&t, qd, start + secs * 1000000000ULL, why, n);
	uint64_t ns = time_ns() - start;
	if (ops < 0)
		return false;
	uint64_t bytes = (uint64_t)ops * t.bs;
	print("BENCH iops=%llu mbps=%llu mode=%s qd=%u bs=%u ops=%llu ns=%llu kicks=%llu clock=%s\n",
	      (unsigned long long)((uint64_t)ops * 1000000000ULL / ns),
	      (unsigned long long)(bytes * 1000 / ns), opt.blk_bench ? opt.blk_bench : "randread",
	      qd, t.bs, (unsigned long long)ops, (unsigned long long)ns,
	      (unsigned long long)t.b.q.kicks, time_source());
	return true;
}
