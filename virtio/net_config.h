/*
 * --net values: `tap=NAME|fd=N[,mac=MAC][,vhost=auto|on|off]` parsed into
 * a struct net_config (vmm.h), and MAC address helpers. Pure: no I/O.
 */
#ifndef VMM_VIRTIO_NET_CONFIG_H
#define VMM_VIRTIO_NET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../vmm.h"

#define NET_SYNTAX "tap=NAME|fd=N[,mac=MAC][,vhost=auto|on|off]"
#define NET_MAC_STR 18 /* "xx:xx:xx:xx:xx:xx" + NUL */

/* A defaulted net_config: no backend yet, fd -1, vhost off. */
void net_config_init(struct net_config *c);
/* "52:54:00:12:34:56" (exactly len bytes, hex digits either case). A
 * multicast or all-zero address is refused. */
bool net_parse_mac(const char *s, size_t len, uint8_t mac[6]);
void net_format_mac(const uint8_t mac[6], char out[NET_MAC_STR]);
/* A name the kernel would take for a network interface. */
bool net_valid_ifname(const char *s, size_t len);
/* Parse one --net value into c; false with the reason in why. */
bool net_config_parse(const char *arg, struct net_config *c, char *why, size_t why_size);
/* --net for cli.c: parse arg into the next cfg->nets slot, checking it
 * against the ones before it. Returns false with "vmm: --net: ..." on err. */
bool cli_parse_net(const char *arg, struct vm_config *cfg, FILE *err);

#endif
