#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "boot/cpu_model.h"
#include "config.h"
#include "module.h"
#include "optlist.h"
#include "seccomp/sandbox.h"
#include "virtio/balloon_config.h"
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
		"  --cpu MODEL[,+FEATURE][,-FEATURE]...\n"
		"                       the guest's CPU model (default " CPU_MODEL_DEFAULT "), with named\n"
		"                       features shown (+) or hidden (-); --cpu help lists them\n"
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
		"  --balloon " BALLOON_SYNTAX "\n"
		"                       a virtio-balloon device: size: the target in MiB\n"
		"                       (changed later by PATCH /balloon); deflate_on_oom: the\n"
		"                       guest may take pages back under memory pressure; stats:\n"
		"                       poll the guest's memory statistics every SECS seconds;\n"
		"                       free_page_reporting: the guest reports free pages\n"
		"  --api-sock PATH      serve the control API (Firecracker-shaped REST over\n"
		"                       HTTP) on this Unix socket; without --kernel or\n"
		"                       --config-file, wait for InstanceStart\n"
		"  --config-file FILE   the VM configuration as JSON (GET /vm/config's shape)\n"
		"  --id ID              instance id reported by the API (default " VMM_DEFAULT_ID ")\n"
		"  --mem-thp            back guest RAM with transparent huge pages (anonymous\n"
		"                       memory, MADV_HUGEPAGE)\n"
		"  --mem-merge          let KSM merge identical guest pages (anonymous memory,\n"
		"                       MADV_MERGEABLE; needs /sys/kernel/mm/ksm/run = 1)\n"
		"  --cpu-affinity CPU[,CPU...]\n"
		"                       pin vCPU n to the n-th host CPU of the list\n"
		"  --seccomp MODE       kill (default): a system call outside the thread's\n"
		"                       allow-list ends the VMM with status 22; log: the kernel\n"
		"                       logs it and lets it run; off: no seccomp filters\n"
		"  --chroot DIR         after set-up, chroot to DIR (later paths resolve in it)\n"
		"  --uid UID --gid GID  after set-up, run as this user and group\n"
		"  --help               show this help\n"
		"  --version            show the version\n",
		MIN_MEM_MIB, MAX_MEM_MIB, DEFAULT_MEM_MIB, VMM_MAX_CPUS, VMM_MAX_DISKS,
		VMM_DISK_SERIAL_MAX, VMM_MAX_NETS);
	modules_usage(out);
	fputs("\n"
		"Exit status: the guest's debug-exit status (odd), 0 when the guest reboots,\n"
		"or an even VMM error status: 2 usage, 4 no /dev/kvm, 6 /dev/kvm permission,\n"
		"8 KVM capability missing, 10 bad kernel or initrd, 12 out of resources,\n"
		"14 guest crashed, 16 stopped by a signal, 18 internal error,\n"
		"20 a disk image is missing, unreadable or locked,\n"
		"22 a forbidden system call (seccomp).\n",
	      out);
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

/* One ",option" of --disk (an optlist_parse() callback). Matched whole,
 * key and value together: each key has a short fixed set of values. */
static bool apply_disk_option(const struct opt_item *o, void *ctx, char *why, size_t why_size)
{
	struct disk_config *d = ctx;
	const char *opt = o->text;
	size_t len = o->len;
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
	if (arg[plen] != ',')
		return true;
	/* The options follow the path's comma: "a.img," has an empty one. */
	return optlist_parse(arg + plen + 1, apply_disk_option, d, why, why_size);
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

/* "CPU[,CPU...]": vCPU n runs on the n-th host CPU of the list. */
static bool parse_cpu_affinity(const char *arg, struct vm_config *cfg, FILE *err)
{
	unsigned n = 0;
	const char *p = arg;
	char num[16];
	uint64_t v;
	do {
		size_t len = strcspn(p, ",");
		if (n == VMM_MAX_CPUS || len == 0 || len >= sizeof(num))
			goto bad;
		memcpy(num, p, len);
		num[len] = '\0';
		if (!parse_uint(num, 0, VMM_MAX_HOST_CPUS - 1, &v))
			goto bad;
		cfg->cpu_affinity[n++] = (unsigned)v;
		p += len;
	} while (*p++ == ',');
	cfg->ncpu_affinity = n;
	return true;
bad:
	fprintf(err,
		"vmm: --cpu-affinity: invalid value '%s' (expected CPU[,CPU...]: host CPU numbers "
		"0..%d, one per vCPU, at most %d)\n",
		arg, VMM_MAX_HOST_CPUS - 1, VMM_MAX_CPUS);
	return false;
}

/* --cpu MODEL[,+FEATURE][,-FEATURE]... (boot/cpu_model.h). */
static bool parse_cpu(const char *arg, struct vm_config *cfg, FILE *err)
{
	char why[192];
	switch (cpu_config_parse(arg, &cfg->cpu, why, sizeof(why))) {
	case CPU_SPEC_OK:
		return true;
	case CPU_SPEC_NOT_BUILT_IN: /* as a module's flag: "--cpu host: not built in (...)" */
		fprintf(err, "vmm: --cpu %s\n", why);
		return false;
	default:
		fprintf(err, "vmm: --cpu: invalid value '%s' (%s)\n", arg, why);
		return false;
	}
}

/* A flag of a compile-time module: the built-in module that owns it parses
 * it; a flag of a module left out of this build is refused by name. */
static bool apply_module_flag(int index, const char *arg, struct vm_config *cfg, FILE *err)
{
	const struct module_known_flag *k = &module_known_flags[index];
	const struct vmm_module *m = module_find(k->module);
	if (!m || !m->parse_flag) {
		fprintf(err, "vmm: --%s: not built in (module %s; build with make MODULES=\"... %s\")\n",
			k->flag, k->module, k->module);
		return false;
	}
	return m->parse_flag(k->flag, arg, cfg, err);
}

static bool nonempty(const char *s)
{
	return s && *s;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_CONSOLE,
       OPT_DEBUG_EXIT, OPT_DISK, OPT_NET, OPT_BALLOON, OPT_API_SOCK, OPT_CONFIG_FILE, OPT_ID,
       OPT_HELP, OPT_VERSION, OPT_MEM_THP, OPT_MEM_MERGE, OPT_CPU_AFFINITY,
       OPT_CPU,
       OPT_SECCOMP, OPT_CHROOT, OPT_UID, OPT_GID,
       /* Then one value per module flag (module_known_flags order). */
       OPT_MODULE_BASE = 1024 };

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
	{ "balloon", required_argument, NULL, OPT_BALLOON },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "id", required_argument, NULL, OPT_ID },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "mem-thp", no_argument, NULL, OPT_MEM_THP },
	{ "mem-merge", no_argument, NULL, OPT_MEM_MERGE },
	{ "cpu-affinity", required_argument, NULL, OPT_CPU_AFFINITY },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "chroot", required_argument, NULL, OPT_CHROOT },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
};
#define N_CORE_OPTS (sizeof(long_opts) / sizeof(long_opts[0]))
#define MAX_MODULE_FLAGS 32

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
	case OPT_BALLOON:
		return cli_parse_balloon(arg, cfg, err);
	case OPT_MEM_THP:
		cfg->huge_pages = HUGE_PAGES_TRANSPARENT;
		return true;
	case OPT_MEM_MERGE:
		cfg->mem_merge = true;
		return true;
	case OPT_CPU_AFFINITY:
		return parse_cpu_affinity(arg, cfg, err);
	case OPT_CPU:
		return parse_cpu(arg, cfg, err);
	case OPT_SECCOMP:
		return sandbox_parse_option("seccomp", arg, cfg, err);
	case OPT_CHROOT:
		return sandbox_parse_option("chroot", arg, cfg, err);
	case OPT_UID:
		return sandbox_parse_option("uid", arg, cfg, err);
	case OPT_GID:
		return sandbox_parse_option("gid", arg, cfg, err);
	default:
		return apply_module_flag(opt - OPT_MODULE_BASE, arg, cfg, err);
	}
}

/* The core's options, then every module flag this source tree knows (built
 * in or not, so a missing module's flag gets its own message). */
static void build_options(struct option *opts)
{
	size_t n = 0;
	for (; n < N_CORE_OPTS; n++)
		opts[n] = long_opts[n];
	for (int i = 0; module_known_flags[i].flag && i < MAX_MODULE_FLAGS; i++)
		opts[n++] = (struct option){module_known_flags[i].flag,
					    module_known_flags[i].has_arg ? required_argument
									  : no_argument,
					    NULL, OPT_MODULE_BASE + i};
	opts[n] = (struct option){0, 0, 0, 0};
}

enum cli_result cli_parse(int argc, char **argv, struct vm_config *cfg, FILE *out, FILE *err)
{
	struct option opts[N_CORE_OPTS + MAX_MODULE_FLAGS + 1];
	build_options(opts);
	optind = 1;
	opterr = 0;
	int opt, idx;
	while ((opt = getopt_long_only(argc, argv, "", opts, &idx)) != -1) {
		if (opt == OPT_HELP) {
			cli_usage(out);
			return CLI_DONE;
		}
		if (opt == OPT_VERSION) {
			fprintf(out, "vmm %s (modules: %s)\n", VMM_VERSION, module_list());
			return CLI_DONE;
		}
		if (opt == OPT_CPU && strcmp(optarg, "help") == 0) {
			cpu_model_help(out);
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
	if (!sandbox_check_options(cfg, err))
		return CLI_ERROR;
	return CLI_RUN;
}
