/* The hugepages module's hooks, reached through the registry as the core
 * reaches them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <linux/memfd.h>

#include "config.h"
#include "mem.h"
#include "module.h"
#include "vmm.h"

static char errbuf[512];

static bool parse(const struct vmm_module *m, const char *arg, struct vm_config *cfg)
{
	FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");
	memset(errbuf, 0, sizeof(errbuf));
	bool ok = m->parse_flag("mem-hugepages", arg, cfg, err);
	fclose(err);
	return ok;
}

static void flag_values(void **state)
{
	(void)state;
	const struct vmm_module *m = module_find("hugepages");
	assert_non_null(m);
	struct vm_config cfg;
	vm_config_init(&cfg);
	assert_true(parse(m, "2M", &cfg));
	assert_int_equal(cfg.huge_pages, HUGE_PAGES_2M);
	assert_true(parse(m, "1G", &cfg));
	assert_int_equal(cfg.huge_pages, HUGE_PAGES_1G);
	const char *bad[] = {"", "2m", "2MB", "4M", "1g", "2M,", " 2M"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(parse(m, bad[i], &cfg));
		assert_non_null(strstr(errbuf, "--mem-hugepages: invalid value"));
	}
	cfg.huge_pages = HUGE_PAGES_TRANSPARENT;
	assert_false(parse(m, "2M", &cfg));
	assert_non_null(strstr(errbuf, "cannot be combined with --mem-thp"));
	vm_config_free(&cfg);
}

static void memory_request(void **state)
{
	(void)state;
	const struct vmm_module *m = module_find("hugepages");
	struct vm_config cfg;
	struct mem_request req;
	vm_config_init(&cfg);
	mem_request_init(&req);
	assert_int_equal(m->mem_prepare(&cfg, &req), 0); /* no hugetlb: untouched */
	assert_int_equal(req.memfd_flags, 0);
	assert_int_equal(req.page_size, 4096);
	cfg.huge_pages = HUGE_PAGES_1G;
	assert_int_equal(m->mem_prepare(&cfg, &req), 0);
	assert_int_equal(req.memfd_flags, MFD_HUGETLB | MFD_HUGE_1GB);
	assert_int_equal(req.page_size, 1ULL << 30);
	assert_true(req.reserve);
	assert_int_equal(req.backing, MEM_SHARED_MEMFD);
	vm_config_free(&cfg);
}

static void checks(void **state)
{
	(void)state;
	const struct vmm_module *m = module_find("hugepages");
	struct vm_config cfg;
	vm_config_init(&cfg);
	assert_int_equal(m->check(&cfg), 0);
	cfg.huge_pages = HUGE_PAGES_1G;
	cfg.mem_mib = 1000;
	assert_int_equal(m->check(&cfg), VMM_EXIT_USAGE);
	cfg.huge_pages = HUGE_PAGES_2M;
	cfg.mem_mib = 128;
	cfg.mem_merge = true;
	assert_int_equal(m->check(&cfg), VMM_EXIT_USAGE);
	vm_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flag_values),
		cmocka_unit_test(memory_request),
		cmocka_unit_test(checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
