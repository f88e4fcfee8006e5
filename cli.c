#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "virtio/net_config.h"

void cli_defaults(struct vm_config *cfg)
{
	vm_config_init(cfg);
}

void cli_usage(FILE *out)
{
	fprintf(out,
		"Usage: vmm --kernel PATH [options]\n"
		"       vmm --config-file FILE [--api-sock PATH] [options]\n"
		"       vmm --api-sock PATH [options]\n"
		"       vmm ctl --api-sock PATH COMMAND   (see vmm ctl --help)\n"
		"\n"
		"Boot a Linux kernel (ELF vmlinux, bzImage or PVH ELF) in a KVM microVM.\n"
		"\n"
		"  --kernel PATH        kernel image; the format is detected from the file\n"
		"  --initrd PATH        initial ramdisk\n"
		"  --cmdline STR        kernel command line (default: \"" DEFAULT_CMDLINE "\")\n"
		"  --mem MIB            guest RAM in MiB, %d..%d (default %d)\n"
		"  --cpus N             vCPUs, 1..%d (default 1)\n"
		"  --console KIND       stdio (default), file:PATH or none\n"
		"  --debug-exit         enable the isa-debug-exit port 0xf4: a guest write of V\n"
		"                       makes the VMM exit with status (V << 1) | 1\n"
		"  --disk " DISK_SYNTAX "\n"
		"                       a raw image as a virtio-blk disk (repeatable, up to %d);\n"
		"                       ro: read-only; serial: GET_ID string (up to %d chars);\n"
		"                       cache=unsafe skips flushes; engine: default io_uring,\n"
		"                       falling back to sync where io_uring is unavailable\n"
		"  --net " NET_SYNTAX "\n"
		"                       a virtio-net device on a tap (repeatable, up to %d):\n"
		"                       tap=NAME opens (or creates) the tap, fd=N takes an open\n"
		"                       one; mac: the guest's MAC (default: random); vhost:\n"
		"                       /dev/vhost-net offload (default off)\n"
		"  --api-sock PATH      serve the control API (Firecracker-shaped REST over\n"
		"                       HTTP) on this Unix socket; without --kernel or\n"
		"                       --config-file, wait for InstanceStart\n"
		"  --config-file FILE   the VM configuration as JSON (GET /vm/config's shape)\n"
		"  --id ID              instance id reported by the API (default " VMM_DEFAULT_ID ")\n"
		"  --help               show this help\n"
		"  --version            show the version\n"
		"\n"
		"Exit status: the guest's debug-exit status (odd), 0 when the guest reboots,\n"
		"or an even VMM error status: 2 usage, 4 no /dev/kvm, 6 /dev/kvm permission,\n"
		"8 KVM capability missing, 10 bad kernel or initrd, 12 out of resources,\n"
		"14 guest crashed, 16 stopped by a signal, 18 internal error,\n"
		"20 a disk image is missing, unreadable or locked.\n",
		MIN_MEM_MIB, MAX_MEM_MIB, DEFAULT_MEM_MIB, VMM_MAX_CPUS, VMM_MAX_DISKS,
		VMM_DISK_SERIAL_MAX, VMM_MAX_NETS);
}

/* Strict unsigned decimal: digits only, no sign, no overflow, in range. */
static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_console(const char *s, struct vm_config *cfg)
{
	if (strcmp(s, "stdio") == 0) {
		cfg->console = CONSOLE_STDIO;
	} else if (strcmp(s, "none") == 0) {
		cfg->console = CONSOLE_NONE;
	} else if (strncmp(s, "file:", 5) == 0 && s[5]) {
		if (vm_config_set_str(&cfg->console_path, s + 5) < 0)
			return false;
		cfg->console = CONSOLE_FILE;
	} else {
		return false;
	}
	return true;
}

/* One ",option" of --disk (opt is len bytes, not terminated). Returns
 * false with the reason in why. */
static bool apply_disk_option(const char *opt, size_t len, struct disk_config *d, char *why,
			      size_t why_size)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(opt, lit, len) == 0)
#define VALUE_OF(key) (len >= sizeof(key) - 1 && memcmp(opt, key, sizeof(key) - 1) == 0)
	const size_t klen_serial = sizeof("serial=") - 1;
	if (IS("ro")) {
		d->ro = true;
	} else if (IS("cache=unsafe")) {
		d->cache = DISK_CACHE_UNSAFE;
	} else if (IS("cache=writeback")) {
		d->cache = DISK_CACHE_WRITEBACK;
	} else if (IS("engine=sync")) {
		d->engine = DISK_ENGINE_SYNC;
	} else if (IS("engine=io_uring")) {
		d->engine = DISK_ENGINE_IO_URING;
	} else if (VALUE_OF("serial=") && vm_config_valid_serial(opt + klen_serial, len - klen_serial)) {
		memset(d->serial, 0, sizeof(d->serial));
		memcpy(d->serial, opt + klen_serial, len - klen_serial);
	} else if (VALUE_OF("serial=")) {
		snprintf(why, why_size, "serial must be 1..%d printable characters",
			 VMM_DISK_SERIAL_MAX);
		return false;
	} else if (VALUE_OF("cache=") || VALUE_OF("engine=")) {
		snprintf(why, why_size, "bad value in '%.*s'", (int)len, opt);
		return false;
	} else {
		snprintf(why, why_size, "unknown option '%.*s'", (int)len, opt);
		return false;
	}
	return true;
#undef IS
#undef VALUE_OF
}

static bool parse_disk_value(const char *arg, struct disk_config *d, char *why, size_t why_size)
{
	memset(d, 0, sizeof(*d));
	size_t plen = strcspn(arg, ",");
	if (plen == 0) {
		snprintf(why, why_size, "empty path");
		return false;
	}
	if (plen >= sizeof(d->path)) {
		snprintf(why, why_size, "path too long");
		return false;
	}
	memcpy(d->path, arg, plen);
	for (const char *p = arg + plen; *p == ',';) {
		p++;
		size_t len = strcspn(p, ",");
		if (len == 0) {
			snprintf(why, why_size, "empty option");
			return false;
		}
		if (!apply_disk_option(p, len, d, why, why_size))
			return false;
		p += len;
	}
	return true;
}

static bool parse_disk(const char *arg, struct vm_config *cfg, FILE *err)
{
	char why[128];
	if (cfg->ndisks >= VMM_MAX_DISKS) {
		fprintf(err, "vmm: --disk: too many disks at '%s' (at most %d)\n", arg,
			VMM_MAX_DISKS);
		return false;
	}
	if (!parse_disk_value(arg, &cfg->disks[cfg->ndisks], why, sizeof(why))) {
		fprintf(err, "vmm: --disk: invalid value '%s' (%s; expected %s)\n", arg, why,
			DISK_SYNTAX);
		return false;
	}
	cfg->ndisks++;
	return true;
}

static bool nonempty(const char *s)
{
	return s && *s;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_CONSOLE,
       OPT_DEBUG_EXIT, OPT_DISK, OPT_NET, OPT_API_SOCK, OPT_CONFIG_FILE, OPT_ID, OPT_HELP,
       OPT_VERSION };

static const struct option long_opts[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "id", required_argument, NULL, OPT_ID },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0, 0, 0, 0 },
};

/* A non-empty string option, copied into *field. */
static bool set_path(char **field, const char *flag, const char *arg, FILE *err)
{
	if (!nonempty(arg)) {
		fprintf(err, "vmm: %s: empty path\n", flag);
		return false;
	}
	if (vm_config_set_str(field, arg) < 0) {
		fprintf(err, "vmm: %s: out of memory\n", flag);
		return false;
	}
	return true;
}

/* Options that name files or ids rather than set numbers. */
static bool apply_string_option(int opt, const char *arg, struct vm_config *cfg, FILE *err)
{
	switch (opt) {
	case OPT_KERNEL:
		return set_path(&cfg->kernel, "--kernel", arg, err);
	case OPT_INITRD:
		return set_path(&cfg->initrd, "--initrd", arg, err);
	case OPT_CMDLINE:
		if (vm_config_set_str(&cfg->cmdline, arg) == 0)
			return true;
		fprintf(err, "vmm: --cmdline: out of memory\n");
		return false;
	case OPT_API_SOCK:
		return set_path(&cfg->api_sock, "--api-sock", arg, err);
	case OPT_CONFIG_FILE:
		return set_path(&cfg->config_file, "--config-file", arg, err);
	case OPT_ID:
		if (vm_config_valid_id(arg, VMM_ID_MAX))
			return set_path(&cfg->id, "--id", arg, err);
		fprintf(err, "vmm: --id: invalid value '%s' (expected 1..%d of A-Z a-z 0-9 _ -)\n",
			arg, VMM_ID_MAX);
		return false;
	default:
		return false;
	}
}

/* Returns false (message printed) if the value is bad. */
static bool apply_option(int opt, const char *arg, struct vm_config *cfg, FILE *err)
{
	uint64_t v;
	switch (opt) {
	case OPT_KERNEL:
	case OPT_INITRD:
	case OPT_CMDLINE:
	case OPT_API_SOCK:
	case OPT_CONFIG_FILE:
	case OPT_ID:
		return apply_string_option(opt, arg, cfg, err);
	case OPT_MEM:
		if (parse_uint(arg, MIN_MEM_MIB, MAX_MEM_MIB, &v)) {
			cfg->mem_mib = v;
			return true;
		}
		fprintf(err, "vmm: --mem: invalid value '%s' (expected MiB, %d..%d)\n", arg,
			MIN_MEM_MIB, MAX_MEM_MIB);
		return false;
	case OPT_CPUS:
		if (parse_uint(arg, 1, VMM_MAX_CPUS, &v)) {
			cfg->cpus = (unsigned)v;
			return true;
		}
		fprintf(err, "vmm: --cpus: invalid value '%s' (expected 1..%d)\n", arg,
			VMM_MAX_CPUS);
		return false;
	case OPT_CONSOLE:
		if (parse_console(arg, cfg))
			return true;
		fprintf(err,
			"vmm: --console: invalid value '%s' (expected stdio, file:PATH or none)\n",
			arg);
		return false;
	case OPT_DEBUG_EXIT:
		cfg->debug_exit = true;
		return true;
	case OPT_DISK:
		return parse_disk(arg, cfg, err);
	case OPT_NET:
		return cli_parse_net(arg, cfg, err);
	default:
		return false;
	}
}

enum cli_result cli_parse(int argc, char **argv, struct vm_config *cfg, FILE *out, FILE *err)
{
	optind = 1;
	opterr = 0;
	int opt, idx;
	while ((opt = getopt_long_only(argc, argv, "", long_opts, &idx)) != -1) {
		if (opt == OPT_HELP) {
			cli_usage(out);
			return CLI_DONE;
		}
		if (opt == OPT_VERSION) {
			fprintf(out, "vmm %s\n", VMM_VERSION);
			return CLI_DONE;
		}
		if (opt == '?' || opt == ':') {
			const char *bad = argv[optind - 1];
			if (optopt)
				fprintf(err, "vmm: %s: missing value (see --help)\n", bad);
			else
				fprintf(err, "vmm: unknown option '%s' (see --help)\n", bad);
			return CLI_ERROR;
		}
		if (!apply_option(opt, optarg, cfg, err))
			return CLI_ERROR;
	}
	if (optind < argc) {
		fprintf(err, "vmm: unexpected argument '%s' (see --help)\n", argv[optind]);
		return CLI_ERROR;
	}
	return CLI_RUN;
}
