/* Reading boot files (kernel, initrd) with one-line errors naming them. */
#ifndef VMM_BOOT_KFILE_H
#define VMM_BOOT_KFILE_H

#include <stddef.h>
#include <stdint.h>

/* Largest kernel file accepted (an uncompressed vmlinux with symbols). */
#define KFILE_KERNEL_MAX (1ULL << 30)

/* Open `path` read-only and check it is a non-empty regular file; `what`
 * ("kernel", "initrd") starts every message. Returns the fd (size in
 * *size), or -1 with a message printed. */
int kfile_open(const char *what, const char *path, uint64_t *size);

/* Read exactly len bytes from fd into dst. Returns 0, or -1 with a message
 * (read error, or the file got shorter). */
int kfile_read_exact(const char *what, const char *path, int fd, void *dst, uint64_t len);

/* Read a whole file of at most `max` bytes into a malloc'd buffer. */
int kfile_read_all(const char *what, const char *path, uint64_t max, uint8_t **buf, size_t *len);

#endif
