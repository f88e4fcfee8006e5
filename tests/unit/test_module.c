/* The module registry: the linker section holds exactly the modules of
 * this build, and every module flag is known to the core by name (so a
 * build without the module can refuse it as "not built in"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "module.h"
#include "vmm.h"

static void list_matches_section(void **state)
{
	(void)state;
	const char *list = module_list();
	if (module_count() == 0) {
		assert_string_equal(list, "none");
		assert_null(module_at(0));
		return;
	}
	char expect[256] = "";
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		assert_non_null(m);
		assert_non_null(m->name);
		assert_ptr_equal(module_find(m->name), m);
		if (i)
			strcat(expect, " ");
		strcat(expect, m->name);
	}
	assert_string_equal(list, expect);
	assert_null(module_at(module_count()));
	assert_null(module_find("no-such-module"));
}

static const struct module_known_flag *known(const char *flag)
{
	for (int i = 0; module_known_flags[i].flag; i++)
		if (strcmp(module_known_flags[i].flag, flag) == 0)
			return &module_known_flags[i];
	return NULL;
}

/* A module flag missing from module_known_flags would be "unknown option"
 * in every build: the table and the modules must agree. */
static void every_flag_is_known(void **state)
{
	(void)state;
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		for (const struct vmm_module_flag *f = m->flags; f && f->name; f++) {
			const struct module_known_flag *k = known(f->name);
			if (!k)
				fail_msg("--%s of module %s is not in module_known_flags", f->name,
					 m->name);
			assert_string_equal(k->module, m->name);
			assert_int_equal(k->has_arg, f->has_arg);
			assert_non_null(m->parse_flag);
		}
	}
}

/* Configuration only a module can carry out is refused by the core when
 * the module is not built in, whichever way it came in. */
static void needs_refused_without_module(void **state)
{
	(void)state;
	struct vm_config cfg;
	vm_config_init(&cfg);
	assert_int_equal(modules_check(&cfg), 0);
	cfg.huge_pages = HUGE_PAGES_2M;
	cfg.mem_mib = 3; /* not a multiple of 2 MiB: the module says so */
	int rc = modules_check(&cfg);
	assert_int_equal(rc, VMM_EXIT_USAGE);
	vm_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_matches_section),
		cmocka_unit_test(every_flag_is_known),
		cmocka_unit_test(needs_refused_without_module),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
