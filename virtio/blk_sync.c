/*
 * The sync engine: preadv/pwritev/fdatasync on the event loop thread, done
 * inside submit(). The fallback where io_uring is unavailable.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "blk_backend.h"

struct sync_priv {
	struct blk_io *head, *tail; /* finished, in order */
};

static int sync_open(struct blk_backend *be, unsigned depth)
{
	(void)depth;
	be->event_fd = -1;
	be->priv = calloc(1, sizeof(struct sync_priv));
	return be->priv ? 0 : -ENOMEM;
}

static int transfer(int fd, struct blk_io *io)
{
	while (io->len) {
		int n = io->niov < IOV_MAX ? (int)io->niov : IOV_MAX;
		ssize_t r = io->op == BLK_IO_READ
				    ? preadv(fd, io->iov, n, (off_t)io->offset)
				    : pwritev2(fd, io->iov, n, (off_t)io->offset, io->dsync ? RWF_DSYNC : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			if (io->op == BLK_IO_WRITE)
				return -EIO;
			blk_io_zero_rest(io); /* the file ended: a hole */
			return 0;
		}
		blk_io_advance(io, (uint64_t)r);
	}
	return 0;
}

static void sync_submit(struct blk_backend *be, struct blk_io *io)
{
	struct sync_priv *p = be->priv;
	if (io->op == BLK_IO_FLUSH)
		io->result = fdatasync(be->fd) < 0 ? -errno : 0;
	else
		io->result = transfer(be->fd, io);
	io->next = NULL;
	if (p->tail)
		p->tail->next = io;
	else
		p->head = io;
	p->tail = io;
}

static void sync_commit(struct blk_backend *be)
{
	(void)be;
}

static struct blk_io *sync_reap(struct blk_backend *be)
{
	struct sync_priv *p = be->priv;
	struct blk_io *io = p->head;
	if (io) {
		p->head = io->next;
		if (!p->head)
			p->tail = NULL;
	}
	return io;
}

static void sync_close(struct blk_backend *be)
{
	free(be->priv);
	be->priv = NULL;
}

const struct blk_engine blk_engine_sync = {
	.name = "sync",
	.open = sync_open,
	.submit = sync_submit,
	.commit = sync_commit,
	.reap = sync_reap,
	.close = sync_close,
};
