#include "kfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../log.h"
#include "../mem.h"

int kfile_open(const char *what, const char *path, uint64_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vmm_err("%s %s: cannot open: %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		vmm_err("%s %s: cannot stat: %s", what, path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		vmm_err("%s %s: not a regular file", what, path);
		close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		vmm_err("%s %s: file is empty", what, path);
		close(fd);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

int kfile_read_exact(const char *what, const char *path, int fd, void *dst, uint64_t len)
{
	uint8_t *p = dst;
	uint64_t done = 0;
	while (done < len) {
		uint64_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
		ssize_t n = pread(fd, p + done, (size_t)chunk, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vmm_err("%s %s: read failed: %s", what, path, strerror(errno));
			return -1;
		}
		if (n == 0) {
			vmm_err("%s %s: file shrank to %llu bytes while being read", what, path,
				(unsigned long long)done);
			return -1;
		}
		done += (uint64_t)n;
	}
	return 0;
}

int kfile_read_all(const char *what, const char *path, uint64_t max, uint8_t **buf, size_t *len)
{
	uint64_t size;
	int fd = kfile_open(what, path, &size);
	if (fd < 0)
		return -1;
	if (size > max) {
		vmm_err("%s %s: file is %llu MiB, more than the %llu MiB limit", what, path,
			(unsigned long long)(size / MIB), (unsigned long long)(max / MIB));
		close(fd);
		return -1;
	}
	uint8_t *b = malloc(size);
	if (!b) {
		vmm_err("%s %s: out of memory reading %llu bytes", what, path,
			(unsigned long long)size);
		close(fd);
		return -1;
	}
	if (kfile_read_exact(what, path, fd, b, size) < 0) {
		free(b);
		close(fd);
		return -1;
	}
	close(fd);
	*buf = b;
	*len = (size_t)size;
	return 0;
}
