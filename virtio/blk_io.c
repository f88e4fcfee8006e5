/* Helpers shared by the virtio-blk engines: partial transfers. */
#include <string.h>

#include "blk_backend.h"

void blk_io_advance(struct blk_io *io, uint64_t n)
{
	io->offset += n;
	io->len -= n;
	while (n && io->niov) {
		if (n < io->iov->iov_len) {
			io->iov->iov_base = (char *)io->iov->iov_base + n;
			io->iov->iov_len -= n;
			return;
		}
		n -= io->iov->iov_len;
		io->iov++;
		io->niov--;
	}
	/* Skip emptied segments so the next call starts on data. */
	while (io->niov && io->iov->iov_len == 0) {
		io->iov++;
		io->niov--;
	}
}

void blk_io_zero_rest(struct blk_io *io)
{
	for (unsigned i = 0; i < io->niov; i++)
		memset(io->iov[i].iov_base, 0, io->iov[i].iov_len);
	io->offset += io->len;
	io->len = 0;
	io->niov = 0;
}
