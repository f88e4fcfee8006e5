/*
 * struct vm_config helpers shared by the command line, the config file and
 * the API: owned strings, defaults, validation of ids and the rules that
 * span fields (one root drive, unique ids, what a bootable VM needs).
 */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

#define VMM_DEFAULT_ID "anonymous-instance"

/* Defaults: 128 MiB, 1 vCPU, stdio console, nothing else. */
void vm_config_init(struct vm_config *cfg);
/* Free the strings; cfg is left as vm_config_init() makes it. */
void vm_config_free(struct vm_config *cfg);
/* *field = a copy of value (NULL clears it). Returns 0, or -1 when out of
 * memory (the field is then unchanged). */
int vm_config_set_str(char **field, const char *value);

/* drive_id / iface_id: 1..max of [A-Za-z0-9_-]. */
bool vm_config_valid_id(const char *s, size_t max);
/* "xx:xx:xx:xx:xx:xx" (hex digits, either case) into mac: a unicast
 * address, not all zero. */
bool vm_config_parse_mac(const char *s, uint8_t mac[6]);
/* A network interface name the kernel accepts: 1..15 printable bytes, not
 * "." or "..", no '/', ':' or space. */
bool vm_config_valid_ifname(const char *s);
/* 8-4-4-4-12 hex digits. */
bool vm_config_valid_partuuid(const char *s);
/* A virtio-blk GET_ID string: 1..20 printable ASCII characters, no comma. */
bool vm_config_valid_serial(const char *s, size_t len);

/* Index of the drive / interface with that id, or -1. */
int vm_config_find_disk(const struct vm_config *cfg, const char *id);
int vm_config_find_net(const struct vm_config *cfg, const char *id);

/* Add d, or replace the drive with d's id. At most one root device; the
 * root device is kept first (it becomes /dev/vda). Returns false with the
 * reason in why. */
bool vm_config_put_disk(struct vm_config *cfg, const struct disk_config *d, char *why, size_t n);
bool vm_config_put_net(struct vm_config *cfg, const struct net_config *net, char *why, size_t n);
/* Give drives and interfaces without an id (--disk, --net) "disk0",
 * "disk1", ..., "net0", ... by position. */
void vm_config_name_devices(struct vm_config *cfg);

/* A balloon target of amount_mib fits the guest's RAM (it cannot take
 * more than there is). false with the reason in why. */
bool vm_config_balloon_fits(const struct vm_config *cfg, uint64_t amount_mib, char *why,
			    size_t n);

/* Can this configuration boot? A kernel is needed. */
bool vm_config_bootable(const struct vm_config *cfg, char *why, size_t n);

/* The command line before device announcements: the boot args (or the
 * default), plus "root=/dev/vda ro|rw" or "root=PARTUUID=... ro|rw" when
 * a drive is the root device. Newly allocated; NULL when out of memory. */
char *vm_config_cmdline(const struct vm_config *cfg);

#endif
