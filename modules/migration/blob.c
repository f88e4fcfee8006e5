/* A growable byte buffer, for saved states built up section by section. */
#include <stdlib.h>
#include <string.h>

#include "mig.h"

void blob_init(struct blob *b)
{
	memset(b, 0, sizeof(*b));
}

void blob_free(struct blob *b)
{
	free(b->data);
	blob_init(b);
}

static bool grow(struct blob *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return false;
		cap *= 2;
	}
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

void *blob_put(struct blob *b, const void *p, size_t n)
{
	if (b->oom || n > SIZE_MAX - b->len || (b->len + n > b->cap && !grow(b, b->len + n))) {
		b->oom = true;
		return NULL;
	}
	uint8_t *at = b->data + b->len;
	if (p)
		memcpy(at, p, n);
	else
		memset(at, 0, n);
	b->len += n;
	return at;
}
