#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_mib = DEFAULT_MEM_MIB;
	cfg->cpus = 1;
	cfg->console = CONSOLE_STDIO;
	cfg->logger.level = VMM_LOG_INFO;
	cfg->uid = cfg->gid = -1;
}

void vm_config_free(struct vm_config *cfg)
{
	char **strs[] = {&cfg->id,	     &cfg->kernel,	 &cfg->initrd,
			 &cfg->cmdline,	     &cfg->console_path, &cfg->logger.path,
			 &cfg->metrics_path, &cfg->api_sock,	 &cfg->config_file, &cfg->chroot,
			 &cfg->restore_snapshot, &cfg->restore_mem, &cfg->incoming};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	vm_config_init(cfg);
}

int vm_config_set_str(char **field, const char *value)
{
	char *copy = NULL;
	if (value && !(copy = strdup(value)))
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

bool vm_config_valid_id(const char *s, size_t max)
{
	size_t len = strlen(s);
	if (len == 0 || len > max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* len characters of s are hex digits. */
static bool hex_run(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool vm_config_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];
	if (strlen(s) != 17)
		return false;
	for (unsigned i = 0; i < 6; i++) {
		if (!hex_run(s + i * 3, 2) || (i < 5 && s[i * 3 + 2] != ':'))
			return false;
		char byte[3] = {s[i * 3], s[i * 3 + 1], 0};
		m[i] = (uint8_t)strtoul(byte, NULL, 16);
	}
	static const uint8_t zero[6];
	/* The low bit of the first octet marks a multicast address. */
	if ((m[0] & 1) || memcmp(m, zero, sizeof(m)) == 0)
		return false;
	memcpy(mac, m, sizeof(m));
	return true;
}

bool vm_config_valid_ifname(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > VMM_NET_IFNAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~' || *s == '/' || *s == ':')
			return false;
	return true;
}

bool vm_config_valid_partuuid(const char *s)
{
	static const size_t groups[] = {8, 4, 4, 4, 12};
	if (strlen(s) != VMM_PARTUUID_MAX)
		return false;
	for (size_t i = 0; i < 5; i++) {
		if (!hex_run(s, groups[i]))
			return false;
		s += groups[i];
		if (i < 4 && *s++ != '-')
			return false;
	}
	return true;
}

bool vm_config_valid_serial(const char *s, size_t len)
{
	if (len == 0 || len > VMM_DISK_SERIAL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

int vm_config_find_disk(const struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->ndisks; i++)
		if (strcmp(cfg->disks[i].id, id) == 0)
			return (int)i;
	return -1;
}

int vm_config_find_net(const struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nnets; i++)
		if (strcmp(cfg->nets[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* Move drive i to the front, keeping the others in order. */
static void disk_to_front(struct vm_config *cfg, unsigned i)
{
	struct disk_config d = cfg->disks[i];
	memmove(&cfg->disks[1], &cfg->disks[0], i * sizeof(cfg->disks[0]));
	cfg->disks[0] = d;
}

bool vm_config_put_disk(struct vm_config *cfg, const struct disk_config *d, char *why, size_t n)
{
	int at = vm_config_find_disk(cfg, d->id);
	for (unsigned i = 0; d->root && i < cfg->ndisks; i++) {
		if (cfg->disks[i].root && (int)i != at) {
			snprintf(why, n, "a root device is already configured: drive '%s'",
				 cfg->disks[i].id);
			return false;
		}
	}
	if (at < 0 && cfg->ndisks >= VMM_MAX_DISKS) {
		snprintf(why, n, "too many drives (at most %d)", VMM_MAX_DISKS);
		return false;
	}
	if (at < 0)
		at = (int)cfg->ndisks++;
	cfg->disks[at] = *d;
	if (d->root)
		disk_to_front(cfg, (unsigned)at);
	return true;
}

bool vm_config_put_net(struct vm_config *cfg, const struct net_config *net, char *why, size_t n)
{
	int at = vm_config_find_net(cfg, net->id);
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct net_config *o = &cfg->nets[i];
		if ((int)i == at)
			continue;
		if (net->tap[0] && strcmp(o->tap, net->tap) == 0) {
			snprintf(why, n, "host_dev_name '%s' is already used by interface '%s'",
				 net->tap, o->id);
			return false;
		}
		if (net->mac_set && o->mac_set && memcmp(o->mac, net->mac, 6) == 0) {
			snprintf(why, n, "guest_mac is already used by interface '%s'", o->id);
			return false;
		}
	}
	if (at < 0 && cfg->nnets >= VMM_MAX_NETS) {
		snprintf(why, n, "too many network interfaces (at most %d)", VMM_MAX_NETS);
		return false;
	}
	if (at < 0)
		at = (int)cfg->nnets++;
	cfg->nets[at] = *net;
	return true;
}

void vm_config_name_devices(struct vm_config *cfg)
{
	char name[32];
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		if (cfg->disks[i].id[0])
			continue;
		/* A name no other drive has: disk<i>, or disk<i>_<k>. */
		snprintf(name, sizeof(name), "disk%u", i);
		for (unsigned k = 1; vm_config_find_disk(cfg, name) >= 0; k++)
			snprintf(name, sizeof(name), "disk%u_%u", i, k);
		snprintf(cfg->disks[i].id, sizeof(cfg->disks[i].id), "%s", name);
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		if (cfg->nets[i].id[0])
			continue;
		snprintf(name, sizeof(name), "net%u", i);
		for (unsigned k = 1; vm_config_find_net(cfg, name) >= 0; k++)
			snprintf(name, sizeof(name), "net%u_%u", i, k);
		snprintf(cfg->nets[i].id, sizeof(cfg->nets[i].id), "%s", name);
	}
}

bool vm_config_balloon_fits(const struct vm_config *cfg, uint64_t amount_mib, char *why,
			    size_t n)
{
	if (amount_mib <= cfg->mem_mib)
		return true;
	snprintf(why, n, "balloon amount_mib (--balloon size) %llu is more than the guest's RAM "
		 "(%llu MiB)", (unsigned long long)amount_mib, (unsigned long long)cfg->mem_mib);
	return false;
}

bool vm_config_bootable(const struct vm_config *cfg, char *why, size_t n)
{
	if (!cfg->kernel) {
		snprintf(why, n, "no kernel: set boot-source (kernel_image_path) first");
		return false;
	}
	if (cfg->ncpu_affinity && cfg->ncpu_affinity != cfg->cpus) {
		snprintf(why, n, "cpu affinity lists %u host CPUs for %u vCPUs: give one per vCPU",
			 cfg->ncpu_affinity, cfg->cpus);
		return false;
	}
	return true;
}

char *vm_config_cmdline(const struct vm_config *cfg)
{
	const char *base = cfg->cmdline ? cfg->cmdline : DEFAULT_CMDLINE;
	const struct disk_config *root = cfg->ndisks && cfg->disks[0].root ? &cfg->disks[0] : NULL;
	char *s = NULL;
	int rc;
	if (!root)
		rc = asprintf(&s, "%s", base);
	else if (root->partuuid[0])
		rc = asprintf(&s, "%s%sroot=PARTUUID=%s %s", base, *base ? " " : "", root->partuuid,
			      root->ro ? "ro" : "rw");
	else
		rc = asprintf(&s, "%s%sroot=/dev/vda %s", base, *base ? " " : "",
			      root->ro ? "ro" : "rw");
	return rc < 0 ? NULL : s;
}
