/*
 * Memory files: guest RAM as a raw image, in the layout of RAM's memfd
 * (below the MMIO hole, then above 4 GiB), so a restore can map it as is.
 *
 *   Full: every page. Ranges the memfd never allocated stay holes (the
 *         guest never touched them: they read as zeroes), so a large,
 *         mostly idle guest writes little.
 *   Diff: only the pages dirtied since the last snapshot, at their
 *         offsets, in a sparse file of RAM's size.
 */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mig.h"
#include "vmm.h"

static int write_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
	while (len) {
		size_t chunk = len > (1ULL << 30) ? (1ULL << 30) : (size_t)len;
		ssize_t w = pwrite(fd, p, chunk, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static int open_out(const char *path, uint64_t size, char *why, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		snprintf(why, n, "mem_file_path '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The allocated ranges of RAM's memfd (SEEK_DATA / SEEK_HOLE), or all of
 * RAM when there is no memfd to ask. */
static int write_full_ranges(const struct guest_mem *m, int fd)
{
	if (m->memfd < 0)
		return write_all(fd, m->host, m->size, 0);
	off_t at = 0, end = (off_t)m->size;
	while (at < end) {
		off_t data = lseek(m->memfd, at, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -1; /* ENXIO: no data after `at` */
		off_t hole = lseek(m->memfd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		if (write_all(fd, m->host + data, (uint64_t)(hole - data), (uint64_t)data) < 0)
			return -1;
		at = hole;
	}
	return 0;
}

int memfile_write_full(const struct guest_mem *m, const char *path, char *why, size_t n)
{
	int fd = open_out(path, m->size, why, n);
	if (fd < 0)
		return -1;
	int rc = write_full_ranges(m, fd);
	if (rc < 0)
		snprintf(why, n, "mem_file_path '%s': %s", path, strerror(errno));
	close(fd);
	return rc;
}

/* Runs of set bits: fn(first page, pages) for each. */
static int for_runs(const uint64_t *bits, uint64_t pages,
		    int (*fn)(void *opaque, uint64_t first, uint64_t count), void *opaque)
{
	uint64_t p = 0, first, count;
	while (dirty_next_run(bits, pages, UINT64_MAX, &p, &first, &count))
		if (fn(opaque, first, count) < 0)
			return -1;
	return 0;
}

struct run_io {
	const struct guest_mem *m;
	int fd;
};

static int write_run(void *opaque, uint64_t first, uint64_t count)
{
	struct run_io *io = opaque;
	return write_all(io->fd, io->m->host + first * 4096, count * 4096, first * 4096);
}

int memfile_write_diff(const struct guest_mem *m, const uint64_t *bits, const char *path, char *why,
		       size_t n)
{
	int fd = open_out(path, m->size, why, n);
	if (fd < 0)
		return -1;
	struct run_io io = {m, fd};
	int rc = for_runs(bits, m->size / 4096, write_run, &io);
	if (rc < 0)
		snprintf(why, n, "mem_file_path '%s': %s", path, strerror(errno));
	close(fd);
	return rc;
}

static int read_run(void *opaque, uint64_t first, uint64_t count)
{
	struct run_io *io = opaque;
	uint8_t *p = io->m->host + first * 4096;
	uint64_t len = count * 4096, off = first * 4096;
	while (len) {
		ssize_t r =
		    pread(io->fd, p, len > (1ULL << 30) ? (1ULL << 30) : (size_t)len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r, off += (uint64_t)r, len -= (uint64_t)r;
	}
	return 0;
}

int memfile_apply_diff(const struct guest_mem *m, const uint64_t *bits, const char *path, char *why,
		       size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, n, "memory file '%s': %s", path, strerror(errno));
		return -1;
	}
	struct run_io io = {m, fd};
	int rc = for_runs(bits, m->size / 4096, read_run, &io);
	if (rc < 0)
		snprintf(why, n, "memory file '%s': %s", path,
			 errno ? strerror(errno) : "short read");
	close(fd);
	return rc;
}

int memfile_check(const char *path, uint64_t size, char *why, size_t n)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, n, "memory file '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		snprintf(why, n,
			 "memory file '%s': %s (%llu bytes; the snapshot's RAM is %llu bytes)",
			 path,
			 S_ISREG(st.st_mode) ? "wrong size, truncated or not this snapshot's"
					     : "not a regular file",
			 (unsigned long long)st.st_size, (unsigned long long)size);
		return -1;
	}
	return 0;
}
