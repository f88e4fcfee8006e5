/*
 * virtio-blk: request parsing over crafted chains (short headers, missing
 * or read-only status, ranges, overflow, discard / write-zeroes ranges),
 * image opening and locking, and the whole device (transport, ring,
 * engines) driven through its MMIO window against a real image file.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "devtest.h"
#include "virtio/blk.h"
#include "vqtest.h"

/* ---- blk_parse() on hand-made chains ---- */

static const struct blk_limits LIM = { .capacity = 1000, .ro = false };
static const struct blk_limits LIM_RO = { .capacity = 1000, .ro = true };

struct req {
	struct virtio_blk_outhdr hdr;
	uint8_t data[4096];
	uint8_t status;
	struct iovec iov[8];
	struct vq_chain c;
	struct blk_parsed p;
};

/* hdr | data (readable or writable) | status, like Linux lays it out. */
static void build(struct req *r, uint32_t type, uint64_t sector, uint32_t len, bool data_in)
{
	memset(r, 0, sizeof(*r));
	r->hdr.type = type;
	r->hdr.sector = sector;
	r->status = 0xee;
	unsigned n = 0;
	r->iov[n++] = (struct iovec){ &r->hdr, sizeof(r->hdr) };
	r->c.nr_out = 1;
	r->c.out_len = sizeof(r->hdr);
	if (len && !data_in) {
		r->iov[n++] = (struct iovec){ r->data, len };
		r->c.nr_out++;
		r->c.out_len += len;
	}
	if (len && data_in) {
		r->iov[n++] = (struct iovec){ r->data, len };
		r->c.nr_in++;
		r->c.in_len += len;
	}
	r->iov[n++] = (struct iovec){ &r->status, 1 };
	r->c.nr_in++;
	r->c.in_len += 1;
	r->c.iov = r->iov;
	r->c.max_iov = 8;
}

static int parse(struct req *r, const struct blk_limits *lim)
{
	return blk_parse(&r->c, lim, &r->p);
}

static void read_write(void **state)
{
	(void)state;
	static struct req r;
	build(&r, VIRTIO_BLK_T_IN, 10, 1024, true);
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK);
	assert_ptr_equal(r.p.status, &r.status);
	assert_int_equal(r.p.offset, 10 * 512);
	assert_int_equal(r.p.len, 1024);
	assert_int_equal(r.p.ndata, 1);
	assert_ptr_equal(r.p.data[0].iov_base, r.data);
	assert_int_equal(r.p.written, 1025);
	build(&r, VIRTIO_BLK_T_OUT, 998, 1024, false);
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK); /* the last two sectors */
	assert_int_equal(r.p.written, 1);
	assert_ptr_equal(r.p.data[0].iov_base, r.data);
	build(&r, VIRTIO_BLK_T_IN, 0, 0, true);
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK); /* empty: a no-op */
}

static void ranges(void **state)
{
	(void)state;
	static struct req r;
	static const struct {
		uint32_t type;
		uint64_t sector;
		uint32_t len;
		int status;
	} cases[] = {
		{ VIRTIO_BLK_T_IN, 999, 512, VIRTIO_BLK_S_OK },
		{ VIRTIO_BLK_T_IN, 1000, 512, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_IN, 999, 1024, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_IN, 1000, 0, VIRTIO_BLK_S_OK },
		{ VIRTIO_BLK_T_IN, 1001, 0, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_OUT, 1000, 512, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_IN, UINT64_MAX, 512, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_IN, 1ULL << 55, 512, VIRTIO_BLK_S_IOERR }, /* *512 wraps to 0 */
		{ VIRTIO_BLK_T_IN, (1ULL << 55) - 1, 512, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_IN, 0, 100, VIRTIO_BLK_S_IOERR }, /* not whole sectors */
		{ VIRTIO_BLK_T_OUT, 0, 513, VIRTIO_BLK_S_IOERR },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&r, cases[i].type, cases[i].sector, cases[i].len,
		      cases[i].type == VIRTIO_BLK_T_IN);
		if (parse(&r, &LIM) != cases[i].status)
			fail_msg("case %zu: type %u sector %llu len %u", i, cases[i].type,
				 (unsigned long long)cases[i].sector, cases[i].len);
		assert_ptr_equal(r.p.status, &r.status);
	}
}

static void malformed(void **state)
{
	(void)state;
	static struct req r;
	/* short header: IOERR through the status byte */
	build(&r, VIRTIO_BLK_T_IN, 0, 512, true);
	r.iov[0].iov_len = 8;
	r.c.out_len = 8;
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_IOERR);
	assert_int_equal(r.p.written, 1);
	/* no header at all */
	build(&r, VIRTIO_BLK_T_IN, 0, 512, true);
	r.c.iov = r.iov + 1;
	r.c.nr_out = 0;
	r.c.out_len = 0;
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_IOERR);
	/* missing status: nothing writable */
	build(&r, VIRTIO_BLK_T_OUT, 0, 512, false);
	r.c.nr_in = 0;
	r.c.in_len = 0;
	assert_int_equal(parse(&r, &LIM), BLK_NO_STATUS);
	/* a read-only "status" descriptor is just more readable data */
	build(&r, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	r.c.nr_out = 2;
	r.c.nr_in = 0;
	r.c.out_len = 17;
	r.c.in_len = 0;
	assert_int_equal(parse(&r, &LIM), BLK_NO_STATUS);
	/* unknown type */
	build(&r, 0x77, 0, 0, false);
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(r.p.written, 1);
}

/* Any layout: the header over two descriptors, status in the data one. */
static void any_layout(void **state)
{
	(void)state;
	static struct req r;
	static uint8_t buf[16 + 1024 + 1];
	memset(&r, 0, sizeof(r));
	r.hdr.type = VIRTIO_BLK_T_IN;
	r.hdr.sector = 4;
	r.iov[0] = (struct iovec){ &r.hdr, 5 };
	r.iov[1] = (struct iovec){ (uint8_t *)&r.hdr + 5, 11 };
	r.iov[2] = (struct iovec){ buf, 1025 };
	r.c = (struct vq_chain){ .nr_out = 2, .nr_in = 1, .out_len = 16, .in_len = 1025,
				 .iov = r.iov, .max_iov = 8 };
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK);
	assert_int_equal(r.p.sector, 4);
	assert_ptr_equal(r.p.status, buf + 1024);
	assert_int_equal(r.p.len, 1024);
	assert_int_equal(r.p.ndata, 1);
	/* OUT with the header and data sharing a descriptor */
	memcpy(buf, &(struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_OUT, .sector = 2 }, 16);
	r.iov[0] = (struct iovec){ buf, 16 + 512 };
	r.iov[1] = (struct iovec){ &r.status, 1 };
	r.c = (struct vq_chain){ .nr_out = 1, .nr_in = 1, .out_len = 528, .in_len = 1,
				 .iov = r.iov, .max_iov = 8 };
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK);
	assert_ptr_equal(r.p.data[0].iov_base, buf + 16);
	assert_int_equal(r.p.len, 512);
	assert_ptr_equal(r.p.status, &r.status);
}

static void read_only(void **state)
{
	(void)state;
	static struct req r;
	build(&r, VIRTIO_BLK_T_OUT, 0, 512, false);
	assert_int_equal(parse(&r, &LIM_RO), VIRTIO_BLK_S_IOERR);
	build(&r, VIRTIO_BLK_T_DISCARD, 0, 16, false);
	assert_int_equal(parse(&r, &LIM_RO), VIRTIO_BLK_S_IOERR);
	build(&r, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false);
	assert_int_equal(parse(&r, &LIM_RO), VIRTIO_BLK_S_IOERR);
	build(&r, VIRTIO_BLK_T_IN, 0, 512, true);
	assert_int_equal(parse(&r, &LIM_RO), VIRTIO_BLK_S_OK);
	build(&r, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	assert_int_equal(parse(&r, &LIM_RO), VIRTIO_BLK_S_OK);
}

static void get_id(void **state)
{
	(void)state;
	static struct req r;
	build(&r, VIRTIO_BLK_T_GET_ID, 0, 64, true);
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK);
	assert_int_equal(r.p.len, VIRTIO_BLK_ID_BYTES);
	assert_int_equal(r.p.written, VIRTIO_BLK_ID_BYTES + 1);
	build(&r, VIRTIO_BLK_T_GET_ID, 0, 8, true);
	assert_int_equal(parse(&r, &LIM), VIRTIO_BLK_S_OK);
	assert_int_equal(r.p.len, 8);
}

static int discard(uint32_t type, const struct virtio_blk_discard_write_zeroes *segs, unsigned n,
		   uint32_t bytes)
{
	static struct req r;
	build(&r, type, 0, bytes, false);
	memcpy(r.data, segs, (size_t)n * sizeof(*segs));
	return parse(&r, &LIM);
}

static void discard_ranges(void **state)
{
	(void)state;
	struct virtio_blk_discard_write_zeroes s[VIRTIO_BLK_MAX_SEGS + 1] = {
		{ .sector = 0, .num_sectors = 8 }, { .sector = 992, .num_sectors = 8 },
	};
	uint32_t d = VIRTIO_BLK_T_DISCARD, wz = VIRTIO_BLK_T_WRITE_ZEROES;
	assert_int_equal(discard(d, s, 2, 32), VIRTIO_BLK_S_OK);
	assert_int_equal(discard(wz, s, 2, 32), VIRTIO_BLK_S_OK);
	assert_int_equal(discard(d, s, 2, 24), VIRTIO_BLK_S_IOERR); /* not whole segments */
	assert_int_equal(discard(d, s, 0, 0), VIRTIO_BLK_S_IOERR);  /* none */
	assert_int_equal(discard(d, s, VIRTIO_BLK_MAX_SEGS + 1,
				 (VIRTIO_BLK_MAX_SEGS + 1) * 16), VIRTIO_BLK_S_IOERR);
	s[1].flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	assert_int_equal(discard(wz, s, 2, 32), VIRTIO_BLK_S_OK);
	assert_int_equal(discard(d, s, 2, 32), VIRTIO_BLK_S_UNSUPP); /* unmap on discard */
	s[1].flags = 0x80;
	assert_int_equal(discard(wz, s, 2, 32), VIRTIO_BLK_S_UNSUPP); /* unknown flag */
	s[1].flags = 0;
	s[1].sector = 993; /* runs past the end */
	assert_int_equal(discard(d, s, 2, 32), VIRTIO_BLK_S_IOERR);
	s[1].sector = UINT64_MAX; /* sector + num wraps */
	assert_int_equal(discard(wz, s, 2, 32), VIRTIO_BLK_S_IOERR);
	s[1] = (struct virtio_blk_discard_write_zeroes){ 0, VIRTIO_BLK_MAX_DISCARD_SECTORS + 1, 0 };
	struct blk_limits big = { .capacity = 1ULL << 40 };
	static struct req r;
	build(&r, d, 0, 32, false);
	memcpy(r.data, s, 32);
	assert_int_equal(blk_parse(&r.c, &big, &r.p), VIRTIO_BLK_S_IOERR); /* over the limit */
}

/* ---- images ---- */

static char img_path[] = "/tmp/vmm-test-blk-XXXXXX";

static int make_image(void **state)
{
	(void)state;
	int fd = mkstemp(img_path);
	if (fd < 0 || ftruncate(fd, 1 * MIB) < 0)
		return -1;
	uint8_t sector[512];
	for (unsigned s = 0; s < 2048; s++) {
		memset(sector, (int)(s & 0xff), sizeof(sector));
		if (pwrite(fd, sector, sizeof(sector), (off_t)s * 512) != 512)
			return -1;
	}
	close(fd);
	return 0;
}

static int remove_image(void **state)
{
	(void)state;
	unlink(img_path);
	return 0;
}

static struct disk_config disk(const char *path, bool ro)
{
	struct disk_config c;
	memset(&c, 0, sizeof(c));
	snprintf(c.path, sizeof(c.path), "%s", path);
	c.ro = ro;
	return c;
}

static void open_errors(void **state)
{
	(void)state;
	struct disk_image a, b, c;
	struct disk_config missing = disk("/nonexistent/vmm-disk.img", false);
	assert_int_equal(disk_image_open(&missing, &a), VMM_EXIT_DISK);
	struct disk_config dir = disk("/tmp", false);
	assert_int_equal(disk_image_open(&dir, &a), VMM_EXIT_DISK);
	struct disk_config chr = disk("/dev/null", false);
	assert_int_equal(disk_image_open(&chr, &a), VMM_EXIT_DISK);
	/* One writer, or any number of readers (OFD locks: also within a process). */
	struct disk_config rw = disk(img_path, false), ro = disk(img_path, true);
	assert_int_equal(disk_image_open(&rw, &a), 0);
	assert_int_equal(a.size, 1 * MIB);
	assert_int_equal(disk_image_open(&rw, &b), VMM_EXIT_DISK);
	assert_int_equal(disk_image_open(&ro, &b), VMM_EXIT_DISK);
	disk_image_close(&a);
	assert_int_equal(disk_image_open(&ro, &a), 0);
	assert_int_equal(disk_image_open(&ro, &b), 0);
	assert_int_equal(disk_image_open(&rw, &c), VMM_EXIT_DISK);
	disk_image_close(&a);
	disk_image_close(&b);
}

/* ---- engines ---- */

static void engines_read_write(const struct blk_engine *e)
{
	int fd = open(img_path, O_RDWR);
	assert_true(fd >= 0);
	struct blk_backend be = { .engine = e, .fd = fd, .event_fd = -1 };
	assert_int_equal(e->open(&be, 8), 0);
	static uint8_t a[700], b[1348];
	memset(a, 0x11, sizeof(a));
	memset(b, 0x22, sizeof(b));
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct blk_io w = { .op = BLK_IO_WRITE, .iov = iov, .niov = 2, .offset = 1500 * 512,
			    .len = 2048 };
	e->submit(&be, &w);
	e->commit(&be);
	struct blk_io *done;
	while (!(done = e->reap(&be)))
		usleep(100);
	assert_ptr_equal(done, &w);
	assert_int_equal(w.result, 0);
	/* a read running past the end of the file comes back zero-filled */
	static uint8_t tail[1024];
	memset(tail, 0xff, sizeof(tail));
	struct iovec riov = { tail, sizeof(tail) };
	struct blk_io r = { .op = BLK_IO_READ, .iov = &riov, .niov = 1, .offset = MIB - 512,
			    .len = sizeof(tail) };
	e->submit(&be, &r);
	e->commit(&be);
	while (!(done = e->reap(&be)))
		usleep(100);
	assert_int_equal(r.result, 0);
	assert_int_equal(tail[0], 2047 & 0xff); /* the last sector's fill byte */
	assert_int_equal(tail[600], 0);
	e->close(&be);
	uint8_t check[2048];
	assert_int_equal(pread(fd, check, sizeof(check), 1500 * 512), 2048);
	assert_int_equal(check[699], 0x11);
	assert_int_equal(check[700], 0x22);
	close(fd);
}

static void engine_sync(void **state)
{
	(void)state;
	engines_read_write(&blk_engine_sync);
}

static void engine_uring(void **state)
{
	(void)state;
	engines_read_write(&blk_engine_uring);
}

/* The ring takes only the operations the engine issues: seccomp cannot
 * filter io_uring, so the ring itself is restricted. */
static void uring_ring_is_restricted(void **state)
{
	(void)state;
	struct blk_backend be = { .engine = &blk_engine_uring, .fd = -1, .event_fd = -1 };
	assert_int_equal(blk_engine_uring.open(&be, 8), 0);
	struct io_uring *ring = be.priv; /* the ring is the engine state's first member */
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
	assert_int_equal(io_uring_submit(ring), 1);
	struct io_uring_cqe *cqe;
	assert_int_equal(io_uring_wait_cqe(ring, &cqe), 0);
	assert_int_equal(cqe->res, -EACCES);
	io_uring_cqe_seen(ring, cqe);
	assert_true(io_uring_register_eventfd(ring, 0) < 0); /* registration is closed too */
	blk_engine_uring.close(&be);
}

/* ---- the whole device, through its MMIO window ---- */

#define QSIZE 16
#define HDR 0x20000ULL
#define STATUS 0x21000ULL
#define DATA 0x30000ULL

static struct vm *vm;
static struct virtio_blk *blk;

static struct vring_desc *desc(void)
{
	return devtest_gp(vm, VQT_DESC);
}

static struct vring_avail *avail(void)
{
	return devtest_gp(vm, VQT_AVAIL);
}

static struct vring_used *used(void)
{
	return devtest_gp(vm, VQT_USED);
}

static void driver_init(uint64_t features)
{
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(devtest_virtio_features(vm, features), 0xb);
	devtest_virtio_queue(vm, 0, QSIZE, VQT_DESC, VQT_AVAIL, VQT_USED);
	devtest_virtio_driver_ok(vm);
}

static struct virtio_blk *device(const struct disk_config *c)
{
	int status = -1;
	struct virtio_blk *b = virtio_blk_create(vm, c, 0, &status);
	assert_non_null(b);
	assert_int_equal(status, 0);
	return b;
}

static int dev_setup(enum disk_engine engine, bool ro)
{
	vm = devtest_vm_new();
	if (guest_mem_init(&vm->mem, 16 * MIB, 0) < 0)
		return -1;
	struct disk_config c = disk(img_path, ro);
	c.engine = engine;
	snprintf(c.serial, sizeof(c.serial), "SERIAL-1");
	blk = device(&c);
	driver_init(blk->st.transport.device_features);
	return 0;
}

static int setup_sync(void **state)
{
	(void)state;
	return dev_setup(DISK_ENGINE_SYNC, false);
}

static int setup_uring(void **state)
{
	(void)state;
	return dev_setup(DISK_ENGINE_AUTO, false);
}

static int setup_ro(void **state)
{
	(void)state;
	return dev_setup(DISK_ENGINE_SYNC, true);
}

static int dev_teardown(void **state)
{
	(void)state;
	virtio_blk_destroy(blk);
	guest_mem_destroy(&vm->mem);
	devtest_vm_free(vm);
	return 0;
}

/* Post header | data | status at descriptors 0..2 and run the loop until
 * the used ring moves. Returns the status byte. */
static int request(uint32_t type, uint64_t sector, uint32_t len)
{
	struct virtio_blk_outhdr *h = devtest_gp(vm, HDR);
	*h = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
	*(uint8_t *)devtest_gp(vm, STATUS) = 0xee;
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	uint16_t n = 0;
	desc()[n] = (struct vring_desc){ HDR, 16, VRING_DESC_F_NEXT, (uint16_t)(n + 1) };
	n++;
	if (len) {
		desc()[n] = (struct vring_desc){ DATA, len,
						 (uint16_t)(VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0)),
						 (uint16_t)(n + 1) };
		n++;
	}
	desc()[n] = (struct vring_desc){ STATUS, 1, VRING_DESC_F_WRITE, 0 };
	uint16_t before = used()->idx;
	avail()->ring[avail()->idx % QSIZE] = 0;
	avail()->idx++;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 100 && used()->idx == before; i++)
		devtest_pump(vm, 100);
	assert_int_equal((uint16_t)(used()->idx - before), 1);
	return *(uint8_t *)devtest_gp(vm, STATUS);
}

static uint32_t last_used_len(void)
{
	return used()->ring[(uint16_t)(used()->idx - 1) % QSIZE].len;
}

static void file_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(img_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void device_config(void **state)
{
	(void)state;
	struct virtio_blk_config c;
	for (unsigned i = 0; i < sizeof(c); i += 4) {
		uint32_t v = devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + i);
		memcpy((uint8_t *)&c + i, &v, sizeof(c) - i < 4 ? sizeof(c) - i : 4);
	}
	assert_int_equal(c.capacity, 2048);
	assert_int_equal(c.blk_size, 512);
	assert_int_equal(c.seg_max, VIRTIO_BLK_SEG_MAX);
	assert_int_equal(c.max_discard_seg, VIRTIO_BLK_MAX_DISCARD_SEG);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_ID), 2);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
}

static void device_io(void **state)
{
	(void)state;
	uint8_t buf[1024];
	assert_int_equal(request(VIRTIO_BLK_T_IN, 3, 1024), VIRTIO_BLK_S_OK);
	assert_int_equal(last_used_len(), 1025);
	assert_int_equal(((uint8_t *)devtest_gp(vm, DATA))[0], 3);
	assert_int_equal(((uint8_t *)devtest_gp(vm, DATA))[600], 4);
	memset(devtest_gp(vm, DATA), 0xab, 1024);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 100, 1024), VIRTIO_BLK_S_OK);
	assert_int_equal(last_used_len(), 1);
	file_read(100 * 512, buf, sizeof(buf));
	for (unsigned i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xab);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, 20), VIRTIO_BLK_S_OK);
	assert_memory_equal(devtest_gp(vm, DATA), "SERIAL-1\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 2048, 512), VIRTIO_BLK_S_IOERR);
	assert_int_equal(last_used_len(), 1);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 2047, 1024), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(99, 0, 0), VIRTIO_BLK_S_UNSUPP);
	/* write zeroes over what was just written */
	struct virtio_blk_discard_write_zeroes seg = { .sector = 100, .num_sectors = 1 };
	memcpy(devtest_gp(vm, DATA), &seg, sizeof(seg));
	assert_int_equal(request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16), VIRTIO_BLK_S_OK);
	file_read(100 * 512, buf, sizeof(buf));
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[511], 0);
	assert_int_equal(buf[512], 0xab);
	seg.sector = 101;
	memcpy(devtest_gp(vm, DATA), &seg, sizeof(seg));
	assert_int_equal(request(VIRTIO_BLK_T_DISCARD, 0, 16), VIRTIO_BLK_S_OK);
	assert_false(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void device_read_only(void **state)
{
	(void)state;
	uint8_t buf[512];
	assert_true(blk->st.transport.device_features & (1ULL << VIRTIO_BLK_F_RO));
	memset(devtest_gp(vm, DATA), 0xcd, 512);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 7, 512), VIRTIO_BLK_S_IOERR);
	file_read(7 * 512, buf, sizeof(buf));
	assert_int_equal(buf[0], 7);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 7, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(((uint8_t *)devtest_gp(vm, DATA))[0], 7);
}

/* A malformed chain is returned with length 0; the device carries on. */
static void device_bad_chains(void **state)
{
	(void)state;
	/* status descriptor read-only: no way to report, used len 0 */
	desc()[0] = (struct vring_desc){ HDR, 16, VRING_DESC_F_NEXT, 1 };
	desc()[1] = (struct vring_desc){ STATUS, 1, 0, 0 };
	avail()->ring[avail()->idx % QSIZE] = 0;
	avail()->idx++;
	/* a buffer outside RAM */
	desc()[2] = (struct vring_desc){ HDR, 16, VRING_DESC_F_NEXT, 3 };
	desc()[3] = (struct vring_desc){ 0xf0000000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 4 };
	desc()[4] = (struct vring_desc){ STATUS, 1, VRING_DESC_F_WRITE, 0 };
	avail()->ring[avail()->idx % QSIZE] = 2;
	avail()->idx++;
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 10 && used()->idx != 2; i++)
		devtest_pump(vm, 100);
	assert_int_equal(used()->idx, 2);
	assert_int_equal(used()->ring[0].id, 0);
	assert_int_equal(used()->ring[0].len, 0);
	assert_int_equal(used()->ring[1].id, 2);
	assert_int_equal(used()->ring[1].len, 0);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), VIRTIO_BLK_S_OK);
}

/* The avail index running ahead breaks the ring: NEEDS_RESET, and a
 * reset brings the device back. */
static void device_broken_ring(void **state)
{
	(void)state;
	avail()->idx = (uint16_t)(avail()->idx + QSIZE + 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	devtest_pump(vm, 100);
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	memset(devtest_gp(vm, VQT_AVAIL), 0, 0x1000);
	memset(devtest_gp(vm, VQT_USED), 0, 0x1000);
	driver_init(blk->st.transport.device_features);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 1, 512), VIRTIO_BLK_S_OK);
}

/* Many requests in one notify: all complete, in one pass of the loop. */
static void device_batch(void **state)
{
	(void)state;
	for (uint16_t i = 0; i < 5; i++) {
		uint16_t d = (uint16_t)(3 * i);
		uint64_t h = HDR + 32ULL * i, st = STATUS + i, data = DATA + 512ULL * i;
		*(struct virtio_blk_outhdr *)devtest_gp(vm, h) =
			(struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 10 + i };
		desc()[d] = (struct vring_desc){ h, 16, VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
		desc()[d + 1] = (struct vring_desc){ data, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
						     (uint16_t)(d + 2) };
		desc()[d + 2] = (struct vring_desc){ st, 1, VRING_DESC_F_WRITE, 0 };
		avail()->ring[avail()->idx % QSIZE] = d;
		avail()->idx++;
	}
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 10 && used()->idx != 5; i++)
		devtest_pump(vm, 100);
	assert_int_equal(used()->idx, 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(*(uint8_t *)devtest_gp(vm, STATUS + i), VIRTIO_BLK_S_OK);
		assert_int_equal(*(uint8_t *)devtest_gp(vm, DATA + 512ULL * i), 10 + i);
	}
}

/* A driver that does not take VIRTIO_BLK_F_FLUSH gets write-through
 * (RWF_DSYNC); writes still work, in both engines. */
static void device_write_through(void **state)
{
	(void)state;
	uint8_t buf[512];
	driver_init(blk->st.transport.device_features & ~(1ULL << VIRTIO_BLK_F_FLUSH));
	memset(devtest_gp(vm, DATA), 0x5a, 512);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 200, 512), VIRTIO_BLK_S_OK);
	file_read(200 * 512, buf, sizeof(buf));
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(buf[511], 0x5a);
}

#define DEV(fn, s) cmocka_unit_test_setup_teardown(fn, s, dev_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(read_write),
		cmocka_unit_test(ranges),
		cmocka_unit_test(malformed),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(read_only),
		cmocka_unit_test(get_id),
		cmocka_unit_test(discard_ranges),
		cmocka_unit_test(open_errors),
		cmocka_unit_test(engine_sync),
		cmocka_unit_test(engine_uring),
		cmocka_unit_test(uring_ring_is_restricted),
		DEV(device_config, setup_sync),
		DEV(device_io, setup_sync),
		DEV(device_io, setup_uring),
		DEV(device_read_only, setup_ro),
		DEV(device_bad_chains, setup_sync),
		DEV(device_broken_ring, setup_uring),
		DEV(device_batch, setup_sync),
		DEV(device_batch, setup_uring),
		DEV(device_write_through, setup_sync),
		DEV(device_write_through, setup_uring),
	};
	return cmocka_run_group_tests(tests, make_image, remove_image);
}
