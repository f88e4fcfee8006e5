#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "clitest.h"
#include "config.h"
#include "module.h"

static void full_command_line(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *args[] = { "--kernel", "k", "--initrd", "i", "--cmdline", "a b", "--mem", "512",
			       "--cpus", "4", "--console", "file:/tmp/x", "--debug-exit", NULL };
	assert_int_equal(clt_parse(&cfg, args), CLI_RUN);
	assert_string_equal(cfg.kernel, "k");
	assert_string_equal(cfg.initrd, "i");
	assert_string_equal(cfg.cmdline, "a b");
	assert_int_equal(cfg.mem_mib, 512);
	assert_int_equal(cfg.cpus, 4);
	assert_int_equal(cfg.console, CONSOLE_FILE);
	assert_string_equal(cfg.console_path, "/tmp/x");
	assert_true(cfg.debug_exit);
	vm_config_free(&cfg);
}

static void defaults(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *args[] = { "--kernel", "k", NULL };
	assert_int_equal(clt_parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.mem_mib, DEFAULT_MEM_MIB);
	assert_int_equal(cfg.cpus, 1);
	assert_int_equal(cfg.console, CONSOLE_STDIO);
	assert_false(cfg.debug_exit);
	assert_null(cfg.cmdline);
	assert_null(cfg.api_sock);
	assert_null(cfg.config_file);
	assert_null(cfg.id);
	vm_config_free(&cfg);
}

static void memory_and_affinity(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *args[] = { "--kernel", "k", "--mem-thp", "--mem-merge", "--cpus", "3",
			       "--cpu-affinity", "1,0,1023", NULL };
	assert_int_equal(clt_parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.huge_pages, HUGE_PAGES_TRANSPARENT);
	assert_true(cfg.mem_merge);
	assert_int_equal(cfg.ncpu_affinity, 3);
	assert_int_equal(cfg.cpu_affinity[0], 1);
	assert_int_equal(cfg.cpu_affinity[1], 0);
	assert_int_equal(cfg.cpu_affinity[2], 1023);
	vm_config_free(&cfg);

	static const char *bad[] = { "", ",", "1,", ",1", "1,,2", "a", "-1", "1024", "1 2",
				     "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *a[] = { "--kernel", "k", "--cpu-affinity", bad[i], NULL };
		assert_int_equal(clt_parse(&cfg, a), CLI_ERROR);
		assert_non_null(strstr(clt_err, "--cpu-affinity: invalid value"));
	}
}

/* A module's flag: parsed by the module when it is built in, refused by
 * name when it is not; never "unknown option". */
static void module_flags(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *args[] = { "--kernel", "k", "--mem-hugepages", "2M", NULL };
	enum cli_result r = clt_parse(&cfg, args);
	if (module_find("hugepages")) {
		assert_int_equal(r, CLI_RUN);
		assert_int_equal(cfg.huge_pages, HUGE_PAGES_2M);
		vm_config_free(&cfg);
		const char *bad[] = { "--kernel", "k", "--mem-hugepages", "4M", NULL };
		assert_int_equal(clt_parse(&cfg, bad), CLI_ERROR);
		assert_non_null(strstr(clt_err, "--mem-hugepages: invalid value '4M'"));
		const char *both[] = { "--kernel", "k", "--mem-thp", "--mem-hugepages", "2M", NULL };
		assert_int_equal(clt_parse(&cfg, both), CLI_ERROR);
		assert_non_null(strstr(clt_err, "cannot be combined with --mem-thp"));
	} else {
		assert_int_equal(r, CLI_ERROR);
		assert_non_null(strstr(clt_err, "--mem-hugepages: not built in (module hugepages"));
	}
	for (int i = 0; module_known_flags[i].flag; i++) {
		const char *name = module_known_flags[i].flag;
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s", name);
		const char *a[] = { "--kernel", "k", flag, "x", NULL };
		clt_parse(&cfg, a);
		assert_null(strstr(clt_err, "unknown option"));
		if (!module_find(module_known_flags[i].module))
			assert_non_null(strstr(clt_err, "not built in"));
		vm_config_free(&cfg);
	}
}

static void api_options(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *args[] = { "--api-sock", "/run/a.sock", "--config-file", "vm.json", "--id",
			       "vm_1-a", NULL };
	assert_int_equal(clt_parse(&cfg, args), CLI_RUN);
	assert_string_equal(cfg.api_sock, "/run/a.sock");
	assert_string_equal(cfg.config_file, "vm.json");
	assert_string_equal(cfg.id, "vm_1-a");
	assert_null(cfg.kernel);
	vm_config_free(&cfg);
	const char *bad_id[] = { "--id", "a b", NULL };
	assert_int_equal(clt_parse(&cfg, bad_id), CLI_ERROR);
	assert_non_null(strstr(clt_err, "--id: invalid value 'a b'"));
	const char *empty[] = { "--api-sock", "", NULL };
	assert_int_equal(clt_parse(&cfg, empty), CLI_ERROR);
	assert_non_null(strstr(clt_err, "--api-sock: empty path"));
	/* A repeated flag: the last one wins, nothing leaks. */
	const char *twice[] = { "--kernel", "a", "--kernel", "b", NULL };
	assert_int_equal(clt_parse(&cfg, twice), CLI_RUN);
	assert_string_equal(cfg.kernel, "b");
	vm_config_free(&cfg);
}

/* Every bad value is refused with a message naming the flag and value. */
static void bad_values(void **state)
{
	(void)state;
	static const struct {
		const char *flag, *value, *expect;
	} cases[] = {
		{ "--mem", "abc", "--mem: invalid value 'abc'" },
		{ "--mem", "-5", "--mem: invalid value '-5'" },
		{ "--mem", "0", "--mem: invalid value '0'" },
		{ "--mem", "7", "--mem: invalid value '7'" },
		{ "--mem", "99999999999999999999999", "--mem: invalid value" },
		{ "--mem", "12x", "--mem: invalid value '12x'" },
		{ "--mem", "", "--mem: invalid value ''" },
		{ "--cpus", "0", "--cpus: invalid value '0'" },
		{ "--cpus", "65", "--cpus: invalid value '65'" },
		{ "--cpus", " 2", "--cpus: invalid value ' 2'" },
		{ "--console", "bogus", "--console: invalid value 'bogus'" },
		{ "--console", "file:", "--console: invalid value 'file:'" },
		{ "--kernel", "", "--kernel: empty path" },
		{ "--initrd", "", "--initrd: empty path" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vm_config cfg;
		const char *args[] = { "--kernel", "k", cases[i].flag, cases[i].value, NULL };
		assert_int_equal(clt_parse(&cfg, args), CLI_ERROR);
		if (!strstr(clt_err, cases[i].expect))
			fail_msg("%s %s: got '%s'", cases[i].flag, cases[i].value, clt_err);
	}
}

static void unknown_and_missing(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *unknown[] = { "--kernel", "k", "--frobnicate", NULL };
	assert_int_equal(clt_parse(&cfg, unknown), CLI_ERROR);
	assert_non_null(strstr(clt_err, "unknown option '--frobnicate'"));
	const char *missing[] = { "--kernel", NULL };
	assert_int_equal(clt_parse(&cfg, missing), CLI_ERROR);
	assert_non_null(strstr(clt_err, "--kernel: missing value"));
	const char *stray[] = { "--kernel", "k", "extra", NULL };
	assert_int_equal(clt_parse(&cfg, stray), CLI_ERROR);
	assert_non_null(strstr(clt_err, "unexpected argument 'extra'"));
}

static void help_and_version(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *help[] = { "--help", NULL };
	assert_int_equal(clt_parse(&cfg, help), CLI_DONE);
	const char *version[] = { "--version", NULL };
	assert_int_equal(clt_parse(&cfg, version), CLI_DONE);
}

static void disks(void **state)
{
	(void)state;
	static struct vm_config cfg;
	const char *args[] = { "--kernel", "k", "--disk", "a.img", "--disk",
			       "/b c.img,ro,serial=ABC-123 x,cache=unsafe,engine=sync", "--disk",
			       "c,engine=io_uring,cache=writeback,serial=12345678901234567890",
			       NULL };
	assert_int_equal(clt_parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.ndisks, 3);
	assert_string_equal(cfg.disks[0].path, "a.img");
	assert_false(cfg.disks[0].ro);
	assert_int_equal(cfg.disks[0].cache, DISK_CACHE_WRITEBACK);
	assert_int_equal(cfg.disks[0].engine, DISK_ENGINE_AUTO);
	assert_string_equal(cfg.disks[0].serial, "");
	assert_string_equal(cfg.disks[1].path, "/b c.img");
	assert_true(cfg.disks[1].ro);
	assert_string_equal(cfg.disks[1].serial, "ABC-123 x");
	assert_int_equal(cfg.disks[1].cache, DISK_CACHE_UNSAFE);
	assert_int_equal(cfg.disks[1].engine, DISK_ENGINE_SYNC);
	assert_string_equal(cfg.disks[2].serial, "12345678901234567890");
	assert_int_equal(cfg.disks[2].engine, DISK_ENGINE_IO_URING);
	assert_int_equal(cfg.disks[2].cache, DISK_CACHE_WRITEBACK);
}

/* Bad --disk values name the flag, the value and the reason. */
static void bad_disks(void **state)
{
	(void)state;
	static const struct {
		const char *value, *why;
	} cases[] = {
		{ "", "empty path" },
		{ ",ro", "empty path" },
		{ "x,", "empty option" },
		{ "x,,ro", "empty option" },
		{ "x,rw", "unknown option 'rw'" },
		{ "x,ro=1", "unknown option 'ro=1'" },
		{ "x,cache=none", "bad value in 'cache=none'" },
		{ "x,cache=", "bad value in 'cache='" },
		{ "x,engine=aio", "bad value in 'engine=aio'" },
		{ "x,serial=", "serial must be 1..20" },
		{ "x,serial=123456789012345678901", "serial must be 1..20" },
		{ "x,serial=a\tb", "serial must be 1..20" },
	};
	static struct vm_config cfg;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { "--kernel", "k", "--disk", cases[i].value, NULL };
		char want[256];
		assert_int_equal(clt_parse(&cfg, args), CLI_ERROR);
		snprintf(want, sizeof(want), "vmm: --disk: invalid value '%s' (%s", cases[i].value,
			 cases[i].why);
		if (!strstr(clt_err, want))
			fail_msg("--disk '%s': got '%s'", cases[i].value, clt_err);
	}
	char path[VMM_DISK_PATH_MAX + 8];
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	const char *longpath[] = { "--kernel", "k", "--disk", path, NULL };
	assert_int_equal(clt_parse(&cfg, longpath), CLI_ERROR);
	/* The message quotes the whole value, so clt_err holds only its start. */
	assert_non_null(strstr(clt_err, "vmm: --disk: invalid value 'ppp"));
}

static void too_many_disks(void **state)
{
	(void)state;
	static struct vm_config cfg;
	const char *args[2 + 2 * (VMM_MAX_DISKS + 1) + 1];
	int n = 0;
	args[n++] = "--kernel";
	args[n++] = "k";
	for (int i = 0; i <= VMM_MAX_DISKS; i++) {
		args[n++] = "--disk";
		args[n++] = "d.img";
	}
	args[n] = NULL;
	assert_int_equal(clt_parse(&cfg, args), CLI_ERROR);
	assert_non_null(strstr(clt_err, "--disk: too many disks"));
	args[n - 2] = NULL; /* exactly the maximum is fine */
	assert_int_equal(clt_parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.ndisks, VMM_MAX_DISKS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_command_line), cmocka_unit_test(defaults),
		cmocka_unit_test(bad_values), cmocka_unit_test(unknown_and_missing),
		cmocka_unit_test(help_and_version), cmocka_unit_test(disks),
		cmocka_unit_test(bad_disks), cmocka_unit_test(too_many_disks),
		cmocka_unit_test(api_options), cmocka_unit_test(memory_and_affinity),
		cmocka_unit_test(module_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
