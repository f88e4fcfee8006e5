/*
 * --balloon values: `size=MIB[,deflate_on_oom][,stats=SECS][,free_page_reporting]`
 * parsed into a struct balloon_config (vmm.h). Pure: no I/O.
 */
#ifndef VMM_VIRTIO_BALLOON_CONFIG_H
#define VMM_VIRTIO_BALLOON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../vmm.h"

#define BALLOON_SYNTAX "size=MIB[,deflate_on_oom][,stats=SECS][,free_page_reporting]"

/* Parse one --balloon value into c; false with the reason in why. */
bool balloon_config_parse(const char *arg, struct balloon_config *c, char *why, size_t why_size);
/* --balloon for cli.c: at most once. Returns false with
 * "vmm: --balloon: ..." printed on err. */
bool cli_parse_balloon(const char *arg, struct vm_config *cfg, FILE *err);

#endif
