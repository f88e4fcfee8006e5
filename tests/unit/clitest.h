/*
 * Helper for the unit tests that run the real command-line parser
 * (test_cli.c, test_seccomp.c): an argument list in, cli_parse()'s result
 * out, with what it printed on stderr kept in clt_err for the test to read.
 */
#ifndef VMM_TESTS_CLITEST_H
#define VMM_TESTS_CLITEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "config.h"

/* The last clt_parse()'s messages (cli_parse()'s err stream). */
static char clt_err[4096];

/* Parse a NULL-terminated argument list (argv[0] is supplied). Unless the
 * result is CLI_RUN, cfg's strings are freed at once (tests look only at
 * the message); otherwise the test frees them. */
static inline enum cli_result clt_parse(struct vm_config *cfg, const char **args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "vmm";
	for (; *args; args++) {
		assert_true(argc < (int)(sizeof(argv) / sizeof(argv[0])) - 1);
		argv[argc++] = (char *)*args;
	}
	argv[argc] = NULL;
	cli_defaults(cfg);
	FILE *out = fopen("/dev/null", "w");
	FILE *err = fmemopen(clt_err, sizeof(clt_err), "w");
	memset(clt_err, 0, sizeof(clt_err));
	enum cli_result r = cli_parse(argc, argv, cfg, out, err);
	fclose(out);
	fclose(err);
	if (r != CLI_RUN)
		vm_config_free(cfg);
	return r;
}

#endif
