/* Polling virtio-balloon driver: one chain at a time per queue. */
#include "balloon.h"

struct balloon_options balloon_opt = {.touch_mib = 48, .report_mib = 4, .rounds = 3};

bool parse_balloon_option(const char *key, const char *val)
{
	static const struct {
		const char *key;
		uint64_t *dst;
		uint64_t min, max;
	} nums[] = {
	    {"balloon_touch_mib", &balloon_opt.touch_mib, 1, 4096},
	    {"balloon_report_mib", &balloon_opt.report_mib, 0, 1024},
	    {"balloon_rounds", &balloon_opt.rounds, 0, 100},
	    {"balloon_hold", &balloon_opt.hold, 0, 1},
	};
	uint64_t num;
	if (!val)
		return false;
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (!strcmp(key, nums[i].key) && parse_u64(val, &num) && num >= nums[i].min &&
		    num <= nums[i].max) {
			*nums[i].dst = num;
			return true;
		}
	return false;
}

static uint64_t offered_features(const struct vdev *d)
{
	vwrite(d, VMMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t f = vread(d, VMMIO_DEVICE_FEATURES);
	vwrite(d, VMMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)vread(d, VMMIO_DEVICE_FEATURES) << 32;
}

static uint64_t ram_total(void)
{
	uint64_t ram = 0;
	for (unsigned i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == E820_RAM)
			ram += boot.mem[i].end - boot.mem[i].start;
	return ram;
}

/* The figures the host reads back through GET /balloon/statistics. */
static void fill_stats(struct balloondev *b)
{
	static const uint16_t tags[BALLOON_NSTATS] = {VBAL_S_MINFLT, VBAL_S_MEMFREE, VBAL_S_MEMTOT,
						      VBAL_S_AVAIL};
	uint64_t vals[BALLOON_NSTATS] = {b->stats_sent, b->free_bytes, b->ram_bytes, b->free_bytes};
	for (unsigned i = 0; i < BALLOON_NSTATS; i++) {
		b->stat_buf[i].tag = tags[i];
		b->stat_buf[i].val = vals[i];
	}
}

static void send_stats(struct balloondev *b)
{
	fill_stats(b);
	b->stats.desc[0] = (struct vdesc){(uint64_t)(uintptr_t)b->stat_buf,
					  BALLOON_NSTATS * sizeof(struct vbal_stat), 0, 0};
	vq_add(&b->stats, 0);
	vq_kick(&b->stats);
	b->stats_sent++;
}

void balloon_poll_stats(struct balloondev *b)
{
	uint32_t len;
	if (b->has_stats && vq_used(&b->stats, &len) >= 0)
		send_stats(b);
}

static bool setup_queues(struct balloondev *b, char *why, size_t n)
{
	unsigned q = 2; /* the queues that exist are numbered in order */
	if (!vq_setup(&b->dev, &b->inflate, 0, BALLOON_QSIZE, why, n) ||
	    !vq_setup(&b->dev, &b->deflate, 1, BALLOON_QSIZE, why, n))
		return false;
	if (b->has_stats && !vq_setup(&b->dev, &b->stats, q++, BALLOON_QSIZE, why, n))
		return false;
	if (b->has_report && !vq_setup(&b->dev, &b->report, q, BALLOON_QSIZE, why, n))
		return false;
	return true;
}

bool balloon_open(struct balloondev *b, char *why, size_t n)
{
	time_init();
	memset(b, 0, sizeof(*b));
	if (!virtio_find(VIRTIO_ID_BALLOON, 0, &b->dev)) {
		snformat(why, n, "no virtio-balloon device on the command line");
		return false;
	}
	b->offered = offered_features(&b->dev);
	uint64_t want = VF_VERSION_1 | VF_EVENT_IDX | VF_INDIRECT_DESC | VBAL_F_STATS_VQ |
			VBAL_F_DEFLATE_ON_OOM | VBAL_F_REPORTING;
	if (!virtio_init(&b->dev, want, why, n))
		return false;
	b->has_stats = b->dev.features & VBAL_F_STATS_VQ;
	b->has_report = b->dev.features & VBAL_F_REPORTING;
	b->pfns = galloc(BALLOON_PFNS * sizeof(uint32_t), 4096);
	b->stat_buf = galloc(BALLOON_NSTATS * sizeof(struct vbal_stat), 64);
	if (!b->pfns || !b->stat_buf) {
		snformat(why, n, "out of memory");
		return false;
	}
	if (!setup_queues(b, why, n))
		return false;
	virtio_driver_ok(&b->dev);
	if (vread(&b->dev, VMMIO_STATUS) & VSTATUS_NEEDS_RESET) {
		snformat(why, n, "device needs reset after DRIVER_OK");
		return false;
	}
	b->ram_bytes = b->free_bytes = ram_total();
	if (b->has_stats)
		send_stats(b);
	print("BALLOON base=0x%llx offered=0x%llx features=0x%llx stats=%u reporting=%u "
	      "total=%llu\n",
	      (unsigned long long)b->dev.base, (unsigned long long)b->offered,
	      (unsigned long long)b->dev.features, b->has_stats, b->has_report,
	      (unsigned long long)b->ram_bytes);
	return true;
}

uint32_t balloon_target(struct balloondev *b)
{
	uint32_t gen, pages;
	do {
		gen = vread(&b->dev, VMMIO_CONFIG_GENERATION);
		pages = vread(&b->dev, VMMIO_CONFIG + VBAL_CFG_NUM_PAGES);
	} while (gen != vread(&b->dev, VMMIO_CONFIG_GENERATION));
	return pages;
}

void balloon_set_actual(struct balloondev *b, uint32_t pages)
{
	vwrite(&b->dev, VMMIO_CONFIG + VBAL_CFG_ACTUAL, pages);
}

int64_t balloon_run(struct balloondev *b, struct gvq *q, uint16_t head)
{
	vq_add(q, head);
	vq_kick(q);
	uint64_t end = time_ns() + BALLOON_TIMEOUT_NS;
	uint32_t len;
	while (vq_used(q, &len) < 0) {
		if (time_ns() > end)
			return -1;
		balloon_poll_stats(b);
		cpu_relax();
	}
	return len;
}

bool balloon_pages(struct balloondev *b, bool inflate, uint64_t pfn, uint32_t count, char *why,
		   size_t n)
{
	struct gvq *q = inflate ? &b->inflate : &b->deflate;
	while (count) {
		uint32_t k = count < BALLOON_PFNS ? count : BALLOON_PFNS;
		for (uint32_t i = 0; i < k; i++)
			b->pfns[i] = (uint32_t)(pfn + i);
		q->desc[0] = (struct vdesc){(uint64_t)(uintptr_t)b->pfns, k * 4, 0, 0};
		if (balloon_run(b, q, 0) < 0) {
			snformat(why, n, "%s chain not returned", inflate ? "inflate" : "deflate");
			return false;
		}
		pfn += k;
		count -= k;
	}
	return true;
}

bool balloon_report(struct balloondev *b, uint64_t addr, uint64_t len, char *why, size_t n)
{
	/* Device-writable, as Linux reports free pages. */
	b->report.desc[0] = (struct vdesc){addr, (uint32_t)len, VDESC_WRITE, 0};
	if (balloon_run(b, &b->report, 0) < 0) {
		snformat(why, n, "free page report not returned");
		return false;
	}
	return true;
}
