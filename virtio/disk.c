/* Raw disk images: open, lock, size, discard, write zeroes. */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../log.h"

static int open_error(const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		vmm_err("disk %s: no such file", path);
		break;
	case EACCES:
	case EPERM:
		vmm_err("disk %s: permission denied", path);
		break;
	case EROFS:
		vmm_err("disk %s: read-only file system (add ,ro to open it read-only)", path);
		break;
	case EISDIR:
		vmm_err("disk %s: is a directory, not an image", path);
		break;
	default:
		vmm_err("disk %s: cannot open: %s", path, strerror(err));
	}
	return VMM_EXIT_DISK;
}

/* OFD locks belong to the open file, not the process, so they also keep
 * two disks of one VMM from sharing a writable image. */
static int lock_image(const struct disk_config *cfg, int fd)
{
	struct flock fl = {
		.l_type = cfg->ro ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		vmm_err("disk %s: locked by another user of the image (another VMM?)", cfg->path);
	else
		vmm_err("disk %s: cannot lock: %s", cfg->path, strerror(errno));
	return VMM_EXIT_DISK;
}

static int image_size(const char *path, int fd, uint64_t *size)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		vmm_err("disk %s: cannot stat: %s", path, strerror(errno));
		return VMM_EXIT_DISK;
	}
	if (S_ISREG(sb.st_mode)) {
		*size = (uint64_t)sb.st_size;
		return 0;
	}
	if (S_ISBLK(sb.st_mode) && ioctl(fd, BLKGETSIZE64, size) == 0)
		return 0;
	vmm_err("disk %s: not a regular file or block device", path);
	return VMM_EXIT_DISK;
}

/* Catch images that open but cannot be read (I/O errors, odd files). */
static int probe_read(const char *path, int fd, uint64_t size)
{
	char buf[512];
	if (size == 0 || pread(fd, buf, sizeof(buf), 0) >= 0)
		return 0;
	vmm_err("disk %s: cannot read: %s", path, strerror(errno));
	return VMM_EXIT_DISK;
}

int disk_image_open(const struct disk_config *cfg, struct disk_image *img)
{
	img->fd = -1;
	img->size = 0;
	int fd = open(cfg->path, (cfg->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return open_error(cfg->path, errno);
	int rc = image_size(cfg->path, fd, &img->size);
	if (!rc)
		rc = lock_image(cfg, fd);
	if (!rc)
		rc = probe_read(cfg->path, fd, img->size);
	if (rc) {
		close(fd);
		return rc;
	}
	img->fd = fd;
	return 0;
}

void disk_image_close(struct disk_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

static bool unsupported(int err)
{
	return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL;
}

int disk_discard(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	return unsupported(errno) ? 0 : -errno;
}

static int write_zero_bytes(int fd, uint64_t off, uint64_t len)
{
	static const char zeroes[65536];
	while (len) {
		size_t n = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
		ssize_t w = pwrite(fd, zeroes, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

int disk_write_zeroes(int fd, uint64_t off, uint64_t len, bool may_unmap)
{
	if (!may_unmap) {
		if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len) == 0)
			return 0;
		if (!unsupported(errno))
			return -errno;
	}
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (!unsupported(errno))
		return -errno;
	return write_zero_bytes(fd, off, len);
}
