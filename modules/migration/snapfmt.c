/*
 * The snapshot state file: a header (magic, version, sizes, the CPU it was
 * taken on, two CRC-32C checksums) and a list of sections. Everything here
 * is pure and meant for hostile input: a file is checked in the order
 * magic, version, header, sizes, checksums, framing, and the first
 * problem is named.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mig.h"

#define SEC_HDR_SIZE 16

static size_t pad8(size_t n)
{
	return (8 - (n & 7)) & 7;
}

bool snap_add(struct blob *b, uint32_t type, uint32_t instance, const void *data, size_t len)
{
	uint64_t len64 = len;
	uint8_t hdr[SEC_HDR_SIZE];
	memcpy(hdr, &type, 4);
	memcpy(hdr + 4, &instance, 4);
	memcpy(hdr + 8, &len64, 8);
	blob_put(b, hdr, sizeof(hdr));
	if (len)
		blob_put(b, data, len);
	if (pad8(len))
		blob_put(b, NULL, pad8(len));
	return !b->oom;
}

static uint32_t header_crc(const struct snap_header *h)
{
	struct snap_header c = *h;
	c.header_crc = 0;
	return crc32c(0, &c, sizeof(c));
}

bool snap_seal(const struct blob *sections, const struct snap_header *proto, struct blob *out)
{
	struct snap_header h = *proto;
	memcpy(h.magic, SNAP_MAGIC, sizeof(h.magic));
	h.version = SNAP_VERSION;
	h.header_size = sizeof(h);
	h.payload_len = sections->len;
	h.payload_crc = crc32c(0, sections->data, sections->len);
	h.header_crc = header_crc(&h);
	blob_put(out, &h, sizeof(h));
	if (sections->len)
		blob_put(out, sections->data, sections->len);
	return !out->oom;
}

void snap_view_free(struct snap_view *v)
{
	free(v->sec);
	v->sec = NULL;
	v->nsec = 0;
}

int snap_parse_sections(const uint8_t *p, size_t len, struct snap_view *out, char *why, size_t n)
{
	out->nsec = 0;
	out->sec = NULL;
	size_t cap = 0;
	for (size_t off = 0; off < len;) {
		if (len - off < SEC_HDR_SIZE) {
			snprintf(why, n, "section at byte %zu is cut short", off);
			goto bad;
		}
		struct snap_section s;
		memcpy(&s.type, p + off, 4);
		memcpy(&s.instance, p + off + 4, 4);
		memcpy(&s.len, p + off + 8, 8);
		off += SEC_HDR_SIZE;
		/* The length, then its padding, must fit what is left. */
		if (s.len > len - off || pad8((size_t)s.len) > len - off - s.len) {
			snprintf(why, n,
				 "section %u at byte %zu claims %llu bytes, more than the file "
				 "holds",
				 s.type, off - SEC_HDR_SIZE, (unsigned long long)s.len);
			goto bad;
		}
		s.data = p + off;
		off += (size_t)s.len + pad8((size_t)s.len);
		if (out->nsec == SNAP_MAX_SECTIONS) {
			snprintf(why, n, "more than %d sections", SNAP_MAX_SECTIONS);
			goto bad;
		}
		if (out->nsec == cap) {
			cap = cap ? cap * 2 : 64;
			struct snap_section *ns = realloc(out->sec, cap * sizeof(*ns));
			if (!ns) {
				snprintf(why, n, "out of memory");
				goto bad;
			}
			out->sec = ns;
		}
		out->sec[out->nsec++] = s;
	}
	return 0;
bad:
	snap_view_free(out);
	return -1;
}

/* Magic, version, header size and checksum. */
static int check_header(const uint8_t *buf, size_t len, struct snap_header *h, char *why, size_t n)
{
	if (len < 12) {
		snprintf(why, n, "truncated: %zu bytes, not even a header (not a snapshot?)", len);
		return -1;
	}
	if (memcmp(buf, SNAP_MAGIC, 8) != 0) {
		snprintf(why, n, "not a vmm snapshot state file (bad magic)");
		return -1;
	}
	uint32_t version;
	memcpy(&version, buf + 8, 4);
	if (version != SNAP_VERSION) {
		snprintf(why, n,
			 "snapshot format version %u is not supported (this VMM reads version %d)",
			 version, SNAP_VERSION);
		return -1;
	}
	if (len < sizeof(*h)) {
		snprintf(why, n, "truncated: %zu bytes, shorter than the %zu-byte header", len,
			 sizeof(*h));
		return -1;
	}
	memcpy(h, buf, sizeof(*h));
	if (h->header_size != sizeof(*h) || header_crc(h) != h->header_crc) {
		snprintf(why, n, "corrupt header (checksum mismatch)");
		return -1;
	}
	return 0;
}

int snap_parse(const uint8_t *buf, size_t len, struct snap_view *out, char *why, size_t n)
{
	memset(out, 0, sizeof(*out));
	if (check_header(buf, len, &out->hdr, why, n) < 0)
		return -1;
	const struct snap_header *h = &out->hdr;
	size_t have = len - sizeof(*h);
	if (h->payload_len != have) {
		snprintf(why, n, "%s: the header announces %llu bytes of state, the file holds %zu",
			 h->payload_len > have ? "truncated" : "trailing bytes",
			 (unsigned long long)h->payload_len, have);
		return -1;
	}
	const uint8_t *payload = buf + sizeof(*h);
	if (crc32c(0, payload, have) != h->payload_crc) {
		snprintf(why, n, "checksum mismatch: the file is corrupt");
		return -1;
	}
	if (h->ncpus == 0 || h->ncpus > 1024 || h->mem_size == 0 || (h->mem_size & 4095)) {
		snprintf(why, n, "corrupt header (%u vCPUs, %llu bytes of RAM)", h->ncpus,
			 (unsigned long long)h->mem_size);
		return -1;
	}
	struct snap_header keep = *h;
	if (snap_parse_sections(payload, have, out, why, n) < 0)
		return -1;
	out->hdr = keep;
	return 0;
}

const struct snap_section *snap_find(const struct snap_view *v, uint32_t type, uint32_t instance)
{
	for (size_t i = 0; i < v->nsec; i++)
		if (v->sec[i].type == type && v->sec[i].instance == instance)
			return &v->sec[i];
	return NULL;
}

uint8_t *snap_read_file(const char *path, size_t *len, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, n, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SNAP_MAX_FILE) {
		snprintf(why, n, "%s: %s", path,
			 S_ISREG(st.st_mode) ? "too large for a snapshot state file"
					     : "not a regular file");
		close(fd);
		return NULL;
	}
	size_t size = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(size ? size : 1);
	while (buf && got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r <= 0) {
			snprintf(why, n, "%s: %s", path,
				 r < 0 ? strerror(errno) : "shrank while read");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)r;
	}
	close(fd);
	if (!buf)
		snprintf(why, n, "%s: out of memory", path);
	*len = size;
	return buf;
}
