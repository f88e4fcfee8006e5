/*
 * Raw disk images: open with the right mode, an advisory lock so two VMMs
 * cannot write one image, the size, and the fallocate-based operations
 * behind virtio-blk DISCARD and WRITE_ZEROES.
 */
#ifndef VMM_VIRTIO_DISK_H
#define VMM_VIRTIO_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "../vmm.h"

struct disk_image {
	int fd;
	uint64_t size; /* bytes */
};

/* Open cfg->path (read-only for ro disks), take an OFD lock (write lock,
 * or read lock for ro) and read its size. Returns 0, or VMM_EXIT_DISK with
 * a message naming the path and the problem. */
int disk_image_open(const struct disk_config *cfg, struct disk_image *img);
void disk_image_close(struct disk_image *img);

/* Deallocate [off, off+len) (reads then return zeroes). A file system that
 * cannot punch holes makes this a no-op: discard is only a hint.
 * Returns 0 or -errno. */
int disk_discard(int fd, uint64_t off, uint64_t len);
/* Make [off, off+len) read as zeroes: ZERO_RANGE, else (may_unmap, or the
 * file system has no ZERO_RANGE) a punched hole, else written zeroes.
 * Returns 0 or -errno. */
int disk_write_zeroes(int fd, uint64_t off, uint64_t len, bool may_unmap);

#endif
