/*
 * The live-migration stream (stream.c): records, each
 *
 *   { u32 type, u32 len, u64 arg, u32 crc (payload), u32 hcrc (header) } + len bytes
 *
 * source -> destination:
 *   HELLO    struct mig_hello: magic, version, CPU, RAM size, vCPUs
 *   CONFIG   the VM configuration (GET /vm/config's JSON)
 *   DISK     arg = drive << 56 | byte offset; an image's bytes (copy_disks)
 *   PAGES    arg = first page (4 KiB, by offset in RAM); whole pages
 *   ZERO     arg = first page; u64 count: pages that now read zero
 *   STATE    everything but RAM (the sections of a snapshot state)
 *   END      u64 when the source paused (CLOCK_REALTIME ns)
 *   GO       the destination may run the VM now
 * destination -> source:
 *   READY    the state is loaded; the VM waits for GO
 * either way:
 *   ERROR    a one-line reason, then the connection closes
 */
#ifndef VMM_MIGRATION_STREAM_H
#define VMM_MIGRATION_STREAM_H

#include <stdint.h>

#include "mig.h"

#define MIG_MAGIC "VMMMIGR" /* and a NUL */
#define MIG_VERSION 1
#define MIG_REC_MAX (16u << 20)
#define MIG_PAGES_MAX 256 /* pages in one PAGES record: 1 MiB */

enum mig_rec_type {
	MIG_REC_HELLO = 1,
	MIG_REC_CONFIG,
	MIG_REC_DISK,
	MIG_REC_PAGES,
	MIG_REC_ZERO,
	MIG_REC_STATE,
	MIG_REC_END,
	MIG_REC_READY,
	MIG_REC_GO,
	MIG_REC_ERROR,
};

struct mig_rec {
	uint32_t type;
	uint32_t len;
	uint64_t arg;
	uint32_t crc;
	uint32_t hcrc;
};

struct mig_hello {
	char magic[8];
	uint32_t version;
	uint32_t ncpus;
	struct cpu_ident cpu;
	uint64_t mem_size;
	uint32_t flags; /* MIG_F_* */
	uint32_t ndisks;
	uint64_t disk_size[8]; /* copy_disks: each image's size */
};
#define MIG_F_COPY_DISKS 1u

#define MIG_DISK_ARG(drive, off) (((uint64_t)(drive) << 56) | (off))

int mig_connect(const char *uri, char *why, size_t n);
int mig_listen(const char *uri, char *why, size_t n);
/* One record. 0, or -1 (errno: the connection failed). */
int mig_send(int fd, uint32_t type, uint64_t arg, const void *payload, uint32_t len);
/* The next record, checked (header, size, payload checksum); *payload is
 * malloc'd. 0, or -1 with why. timeout_ms < 0: no limit. */
int mig_recv(int fd, struct mig_rec *r, void **payload, int timeout_ms, char *why, size_t n);
void mig_hello_init(struct mig_hello *h, const struct cpu_ident *cpu, uint64_t mem_size,
		    uint32_t ncpus);
/* A HELLO record of this version; the CPU is checked apart. */
int mig_hello_check(const struct mig_rec *r, const void *p, struct mig_hello *out, char *why,
		    size_t n);

#endif
