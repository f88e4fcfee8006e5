/*
 * The io_uring engine: one ring per disk. Requests are queued as SQEs and
 * handed to the kernel in one io_uring_submit() per batch; completions are
 * signalled on an eventfd that the device watches on the event loop, and
 * reaped there. Short transfers are resubmitted for the rest.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk_backend.h"

struct uring_priv {
	struct io_uring ring;
	struct blk_io *failed; /* could not be queued: reaped first */
	unsigned inflight;     /* SQEs queued whose CQE is not yet seen */
};

/*
 * Seccomp cannot see what a ring does, so the ring is created disabled and
 * restricted to the operations this engine issues before it is enabled:
 * the sandbox stays meaningful even though io_uring_enter is allowed.
 */
static int restrict_ring(struct io_uring *ring)
{
	static const uint8_t ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC };
	struct io_uring_restriction r[sizeof(ops) + 1];
	memset(r, 0, sizeof(r));
	for (unsigned i = 0; i < sizeof(ops); i++) {
		r[i].opcode = IORING_RESTRICTION_SQE_OP;
		r[i].sqe_op = ops[i];
	}
	r[sizeof(ops)].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED; /* none */
	/* The raw register call: Debian's liburing 2.3 exports no wrappers. */
	int rc = io_uring_register((unsigned)ring->ring_fd, IORING_REGISTER_RESTRICTIONS, r,
				   sizeof(ops) + 1);
	if (rc >= 0)
		rc = io_uring_register((unsigned)ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	return rc;
}

static int setup_ring(struct uring_priv *p, struct blk_backend *be, unsigned depth)
{
	struct io_uring_params params = { .flags = IORING_SETUP_R_DISABLED };
	int rc = io_uring_queue_init_params(depth, &p->ring, &params);
	if (rc < 0)
		return rc;
	be->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->event_fd < 0)
		rc = -errno;
	else if ((rc = io_uring_register_eventfd(&p->ring, be->event_fd)) >= 0)
		rc = restrict_ring(&p->ring);
	if (rc >= 0)
		return 0;
	if (be->event_fd >= 0)
		close(be->event_fd);
	be->event_fd = -1;
	io_uring_queue_exit(&p->ring);
	return rc;
}

static int uring_open(struct blk_backend *be, unsigned depth)
{
	struct uring_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	int rc = setup_ring(p, be, depth);
	if (rc < 0) {
		free(p);
		return rc;
	}
	be->priv = p;
	return 0;
}

static void fail(struct uring_priv *p, struct blk_io *io, int err)
{
	io->result = err;
	io->next = p->failed;
	p->failed = io;
}

/* Queue (what is left of) io as one SQE. */
static void queue_io(struct blk_backend *be, struct blk_io *io)
{
	struct uring_priv *p = be->priv;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
	if (!sqe) { /* SQ full: push what is there, then retry once */
		io_uring_submit(&p->ring);
		sqe = io_uring_get_sqe(&p->ring);
	}
	if (!sqe) {
		fail(p, io, -EAGAIN);
		return;
	}
	switch (io->op) {
	case BLK_IO_READ:
		io_uring_prep_readv(sqe, be->fd, io->iov, io->niov, io->offset);
		break;
	case BLK_IO_WRITE:
		io_uring_prep_writev(sqe, be->fd, io->iov, io->niov, io->offset);
		sqe->rw_flags = io->dsync ? RWF_DSYNC : 0;
		break;
	case BLK_IO_FLUSH:
		io_uring_prep_fsync(sqe, be->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	p->inflight++;
}

static void uring_submit(struct blk_backend *be, struct blk_io *io)
{
	io->result = 0;
	queue_io(be, io);
}

static void uring_commit(struct blk_backend *be)
{
	struct uring_priv *p = be->priv;
	if (io_uring_sq_ready(&p->ring))
		io_uring_submit(&p->ring);
}

/* Account for res bytes of io; true when io is finished. */
static bool settle(struct blk_backend *be, struct blk_io *io, int res)
{
	if (io->op == BLK_IO_FLUSH) {
		io->result = res < 0 ? res : 0;
		return true;
	}
	if (res == -EAGAIN || res == -EINTR) {
		queue_io(be, io);
		return false;
	}
	if (res < 0) {
		io->result = res;
		return true;
	}
	if (res == 0) {
		if (io->op == BLK_IO_WRITE) {
			io->result = -EIO;
			return true;
		}
		blk_io_zero_rest(io); /* the file ended: a hole */
		return true;
	}
	blk_io_advance(io, (uint64_t)res < io->len ? (uint64_t)res : io->len);
	if (io->len == 0)
		return true;
	queue_io(be, io);
	return false;
}

static struct blk_io *uring_reap(struct blk_backend *be)
{
	struct uring_priv *p = be->priv;
	if (p->failed) {
		struct blk_io *io = p->failed;
		p->failed = io->next;
		return io;
	}
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
		struct blk_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&p->ring, cqe);
		p->inflight--;
		if (settle(be, io, res))
			return io;
	}
	uring_commit(be); /* the rest of short transfers must not sit in the SQ */
	return NULL;
}

static void uring_close(struct blk_backend *be)
{
	struct uring_priv *p = be->priv;
	if (!p)
		return;
	/* The kernel may still be copying into guest memory: wait, so the
	 * caller can unmap it safely afterwards. */
	uring_commit(be);
	while (p->inflight) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&p->ring, &cqe) < 0)
			break;
		io_uring_cqe_seen(&p->ring, cqe);
		p->inflight--;
	}
	io_uring_queue_exit(&p->ring);
	if (be->event_fd >= 0)
		close(be->event_fd);
	be->event_fd = -1;
	free(p);
	be->priv = NULL;
}

const struct blk_engine blk_engine_uring = {
	.name = "io_uring",
	.open = uring_open,
	.submit = uring_submit,
	.commit = uring_commit,
	.reap = uring_reap,
	.close = uring_close,
};
