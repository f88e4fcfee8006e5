/*
 * The sandbox's command-line flags: --seccomp=kill|log|off, --chroot DIR,
 * --uid UID and --gid GID (numbers: no user database is read, so nothing
 * depends on /etc inside or outside the jail).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../config.h"
#include "sandbox.h"

/* A decimal id, 0..2^32-2 ((uid_t)-1 means "unchanged" to the kernel). */
static bool parse_id(const char *s, long long *out)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v >= 0xffffffffULL)
		return false;
	*out = (long long)v;
	return true;
}

static bool parse_mode(const char *s, enum sandbox_mode *out)
{
	static const char *const names[] = {
	    [SANDBOX_KILL] = "kill",
	    [SANDBOX_LOG] = "log",
	    [SANDBOX_OFF] = "off",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (s && strcmp(s, names[i]) == 0) {
			*out = (enum sandbox_mode)i;
			return true;
		}
	return false;
}

bool sandbox_parse_option(const char *flag, const char *arg, struct vm_config *cfg, FILE *err)
{
	if (strcmp(flag, "seccomp") == 0) {
		if (parse_mode(arg, &cfg->seccomp))
			return true;
		fprintf(err, "vmm: --seccomp: invalid value '%s' (expected kill, log or off)\n",
			arg ? arg : "");
		return false;
	}
	if (strcmp(flag, "chroot") == 0) {
		/* Absolute: it is resolved once, after set-up, from wherever the
		 * VMM is then. */
		if (arg && arg[0] == '/' && vm_config_set_str(&cfg->chroot, arg) == 0)
			return true;
		fprintf(err, "vmm: --chroot: invalid value '%s' (expected an absolute directory)\n",
			arg ? arg : "");
		return false;
	}
	bool uid = strcmp(flag, "uid") == 0;
	if (uid || strcmp(flag, "gid") == 0) {
		if (parse_id(arg, uid ? &cfg->uid : &cfg->gid))
			return true;
		fprintf(err, "vmm: --%s: invalid value '%s' (expected a number, 0..4294967294)\n",
			flag, arg ? arg : "");
		return false;
	}
	fprintf(err, "vmm: --%s: not a sandbox option\n", flag);
	return false;
}

bool sandbox_check_options(const struct vm_config *cfg, FILE *err)
{
	/* A new uid with root's groups (or the reverse) is half a jail. */
	if ((cfg->uid < 0) != (cfg->gid < 0)) {
		fprintf(err, "vmm: --%s: needs --%s too (the jail changes both or neither)\n",
			cfg->uid < 0 ? "gid" : "uid", cfg->uid < 0 ? "uid" : "gid");
		return false;
	}
	return true;
}
