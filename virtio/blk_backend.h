/*
 * virtio-blk I/O engines. An engine moves data between guest buffers and
 * the image; the device never blocks a vCPU on it. Both engines take
 * requests with submit(), hand them to the kernel with commit(), and give
 * them back, finished, through reap() on the event loop thread:
 *   - sync: preadv/pwritev/fdatasync inside submit() (the fallback);
 *   - io_uring: one ring per disk, completions signalled on an eventfd
 *     that the device watches on the event loop.
 */
#ifndef VMM_VIRTIO_BLK_BACKEND_H
#define VMM_VIRTIO_BLK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum blk_io_op { BLK_IO_READ, BLK_IO_WRITE, BLK_IO_FLUSH };

struct blk_io {
	enum blk_io_op op;
	struct iovec *iov; /* advanced in place as parts complete */
	unsigned niov;
	uint64_t offset; /* bytes into the image */
	uint64_t len;    /* bytes still to transfer */
	bool dsync;      /* write through: durable when it completes */
	int result;      /* 0, or -errno; set when reaped */
	struct blk_io *next; /* the engine's list link */
};

struct blk_backend {
	const struct blk_engine *engine;
	int fd;       /* the image */
	int event_fd; /* readable when reap() may have more; -1: never */
	void *priv;
};

struct blk_engine {
	const char *name;
	/* 0, or -errno if the engine cannot run here. */
	int (*open)(struct blk_backend *be, unsigned depth);
	void (*submit)(struct blk_backend *be, struct blk_io *io);
	void (*commit)(struct blk_backend *be);
	/* One finished request, or NULL; what it had to resubmit (the rest
	 * of a short transfer) is handed to the kernel before NULL. */
	struct blk_io *(*reap)(struct blk_backend *be);
	void (*close)(struct blk_backend *be);
};

extern const struct blk_engine blk_engine_sync;
extern const struct blk_engine blk_engine_uring;

/* Drop the first n bytes of io's remaining iovec; n <= io->len. */
void blk_io_advance(struct blk_io *io, uint64_t n);
/* Zero the rest of a read that hit the end of the file. */
void blk_io_zero_rest(struct blk_io *io);

#endif
