/* CPL3 side of the test guest: options, test dispatch, simple tests. */
#include "balloon.h"
#include "blk.h"
#include "guest.h"
#include "net.h"

struct options opt = {.test = "hello", .sleep_ms = 300};
bool exit_via_debug;
const char *current_test;

/* Exit convention (README.md). */
void guest_exit(bool pass, unsigned code)
{
	if (pass) {
		if (exit_via_debug)
			pio_out8(0xf4, 0);
	} else {
		pio_out8(0xf4, (uint8_t)(code ? code : EXITV_FAIL));
	}
	/* Still here: no debug-exit device (or pass). Reset via the i8042. */
	pio_out8(0x64, 0xfe);
	sys_halt();
}

/* ---- command line ---- */

/* Fully overwritten before use: no need to clear it in ring 0. */
static char argbuf[CMDLINE_MAX] __attribute__((section(".bss.nozero.argbuf")));

/* guest.blk_* options (blk.h); false if key is not one or val is bad. */
static bool parse_blk_option(const char *key, const char *val)
{
	static const struct {
		const char *key;
		uint64_t *dst;
		uint64_t max;
	} nums[] = {
		{"blk_index", &opt.blk_index, 15},      {"blk_sectors", &opt.blk_sectors, ~0ULL},
		{"blk_n", &opt.blk_n, 1ULL << 40},      {"blk_qd", &opt.blk_qd, 32},
		{"blk_bs", &opt.blk_bs, 1U << 20},      {"blk_secs", &opt.blk_secs, 3600},
	};
	uint64_t num;
	if (!val)
		return false;
	if (!strcmp(key, "blk_serial")) {
		opt.blk_serial = val;
		return true;
	}
	if (!strcmp(key, "blk_bench")) {
		opt.blk_bench = val;
		return true;
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (!strcmp(key, nums[i].key) && parse_u64(val, &num) && num <= nums[i].max) {
			*nums[i].dst = num;
			return true;
		}
	return false;
}

/* Split argbuf in place into key / value pairs (Linux style: spaces
 * separate, double quotes group), and apply the guest.* ones. */
static bool parse_cmdline(char *why, size_t n)
{
	memcpy(argbuf, boot.cmdline, sizeof(argbuf));
	char *p = argbuf;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		char *key = p, *val = NULL, *w = p;
		bool quoted = false;
		for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"') {
				quoted = !quoted;
				continue;
			}
			if (*p == '=' && !val) {
				*w++ = 0;
				val = w;
				continue;
			}
			*w++ = *p;
		}
		if (*p)
			p++;
		*w = 0;
		if (strncmp(key, "guest.", 6))
			continue;
		key += 6;
		uint64_t num;
		if (!strcmp(key, "test") && val && *val) {
			opt.test = val;
		} else if (!strcmp(key, "exit") && val) {
			if (!strcmp(val, "debug"))
				exit_via_debug = true;
			else if (strcmp(val, "reset")) {
				snformat(why, n, "bad guest.exit=%s (reset|debug)", val);
				return false;
			}
		} else if (!strcmp(key, "exit_code") && val && parse_u64(val, &num) && num <= 255) {
			print("EXIT_CODE %u\n", (unsigned)num);
			pio_out8(0xf4, (uint8_t)num);
			print("EXIT_CODE ignored: no debug-exit device\n");
		} else if (!strcmp(key, "expect_mem_mib") && val && parse_u64(val, &num)) {
			opt.expect_mem_mib = num;
		} else if (!strcmp(key, "sleep_ms") && val && parse_u64(val, &num) &&
			   num <= 3600000) {
			opt.sleep_ms = num;
		} else if (!strcmp(key, "fill_mib") && val && parse_u64(val, &num) && num <= 1 << 20) {
			opt.fill_mib = num;
		} else if (!strcmp(key, "fill_seed") && val && parse_u64(val, &num)) {
			opt.fill_seed = num;
		} else if (!parse_blk_option(key, val) && !parse_net_option(key, val) &&
			   !parse_balloon_option(key, val) && !parse_migtest_option(key, val)) {
			snformat(why, n, "bad option guest.%s%s%s", key, val ? "=" : "",
				 val ? val : "");
			return false;
		}
	}
	return true;
}

/* ---- simple tests ---- */

static bool test_hello(char *why, size_t n)
{
	(void)why, (void)n;
	print("Hello from the vmm test guest\n");
	return true;
}

static bool test_cmdline(char *why, size_t n)
{
	(void)why, (void)n;
	print("CMDLINE %s\n", boot.cmdline);
	return true;
}

static bool contains_ram(uint64_t addr)
{
	for (unsigned i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == E820_RAM && boot.mem[i].start <= addr &&
		    addr < boot.mem[i].end)
			return true;
	return false;
}

static bool test_e820(char *why, size_t n)
{
	uint64_t ram = 0;
	for (unsigned i = 0; i < boot.nmem; i++) {
		const struct mem_range *r = &boot.mem[i];
		print("E820 0x%016llx 0x%016llx %u\n", (unsigned long long)r->start,
		      (unsigned long long)r->end, r->type);
		if (r->type == E820_RAM)
			ram += r->end - r->start;
	}
	uint64_t mib = ram >> 20;
	print("E820 total_mib=%llu\n", (unsigned long long)mib);
	if (!boot.nmem) {
		snformat(why, n, "no memory map");
		return false;
	}
	if (boot.mem_truncated) {
		snformat(why, n, "more than %u entries", MAX_MEM_RANGES);
		return false;
	}
	for (unsigned i = 0; i < boot.nmem; i++) {
		const struct mem_range *r = &boot.mem[i];
		if (r->end <= r->start) {
			snformat(why, n, "entry %u is empty or wraps", i);
			return false;
		}
		if (i && r->start < boot.mem[i - 1].end) {
			snformat(why, n, "entry %u not sorted or overlaps the previous one", i);
			return false;
		}
	}
	if (!contains_ram(0)) {
		snformat(why, n, "no RAM at 0");
		return false;
	}
	if (!contains_ram(0x100000)) {
		snformat(why, n, "no RAM at 1 MiB");
		return false;
	}
	if (opt.expect_mem_mib) {
		/* The VMM keeps a little below 1 MiB for itself. */
		uint64_t want = opt.expect_mem_mib << 20;
		if (ram > want || ram + (1ULL << 20) < want) {
			snformat(why, n, "RAM is %llu bytes, expected %llu MiB (-1 MiB)",
				 (unsigned long long)ram, (unsigned long long)opt.expect_mem_mib);
			return false;
		}
	}
	return true;
}

/* Deliberate #UD at CPL3: exercises the exception report and exit path. */
static bool test_fault(char *why, size_t n)
{
	(void)why, (void)n;
	__asm__ volatile("ud2");
	return false;
}

/* clang-format off */
static const struct {
	const char *name;
	test_fn fn;
} tests[] = {
	{"hello", test_hello},
	{"cmdline", test_cmdline},
	{"e820", test_e820},
	{"smp", test_smp},
	{"kvmclock", test_kvmclock},
	{"memtest", test_memtest},
	{"memhold", test_memhold},
	{"fault", test_fault},
	{"blk", test_blk},
	{"blk_ro", test_blk_ro},
	{"blk_range", test_blk_range},
	{"blk_durable", test_blk_durable},
	{"blk_bench", test_blk_bench},
	{"blk_evil", test_blk_evil},
	{"counter", test_counter},
	{"net", test_net},
	{"net_bench", test_net_bench},
	{"balloon", test_balloon},
	{"balloon_evil", test_balloon_evil},
	{"migtest", test_migtest},
};
/* clang-format on */

void user_main(void)
{
	static char why[256];
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	current_test = opt.test;

	bool ok = parse_cmdline(why, sizeof(why));
	current_test = opt.test;
	print("GUEST boot=%s info=0x%llx cpl=%u test=%s\n",
	      boot.kind == BOOT_PVH ? "pvh" : "linux64", (unsigned long long)boot.info_addr, cs & 3,
	      opt.test);
	if (!ok) {
		print("TEST %s FAIL: %s\n", opt.test, why);
		guest_exit(false, EXITV_FAIL);
	}
	if (boot.bad) {
		print("TEST %s FAIL: %s\n", opt.test, boot.note);
		guest_exit(false, EXITV_BOOTINFO);
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(tests[i].name, opt.test))
			continue;
		why[0] = 0;
		if (tests[i].fn(why, sizeof(why))) {
			print("TEST %s PASS\n", opt.test);
			guest_exit(true, 0);
		}
		print("TEST %s FAIL: %s\n", opt.test, why[0] ? why : "failed");
		guest_exit(false, EXITV_FAIL);
	}
	print("TEST %s FAIL: unknown test\n", opt.test);
	guest_exit(false, EXITV_FAIL);
}
