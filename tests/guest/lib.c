/* Freestanding helpers: string functions, polled COM1, a small printf. */
#include "guest.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

/* Decimal, or hex with 0x, at the start of s. Returns the first character
 * after the number, or NULL if there are no digits or the value overflows. */
const char *parse_u64_prefix(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	const char *start = s;
	for (;; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return NULL;
		v = v * base + d;
	}
	if (s == start)
		return NULL;
	*out = v;
	return s;
}

/* The whole string must be a number. */
bool parse_u64(const char *s, uint64_t *out)
{
	const char *end = parse_u64_prefix(s, out);
	return end && *end == '\0';
}

/* ---- COM1, polled ---- */

#define COM1 0x3f8

void serial_write_ring0(const char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		/* Wait for THR empty (LSR bit 5); bounded, so a missing UART
		 * (reads 0xff, or a stuck 0) cannot hang the guest. */
		for (unsigned i = 0; i < 100000; i++)
			if (inb(COM1 + 5) & 0x20)
				break;
		outb(COM1, (uint8_t)s[k]);
	}
}

void serial_write(const char *s, size_t n)
{
	if (cpl())
		syscall2(SYS_WRITE, (long)(uintptr_t)s, (long)n);
	else
		serial_write_ring0(s, n);
}

/* ---- formatting: %[0][width][l|ll|z](d|u|x|s|c|p), %% ---- */

struct sink {
	char *buf;
	size_t size, len;
};

static void put(struct sink *k, char c)
{
	if (k->len + 1 < k->size)
		k->buf[k->len] = c;
	k->len++;
}

int vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink k = {buf, size, 0};
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&k, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		unsigned width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		char tmp[24];
		const char *s = tmp;
		size_t n = 0;
		bool neg = false;
		uint64_t v;
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t sv = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			neg = sv < 0;
			v = neg ? -(uint64_t)sv : (uint64_t)sv;
			goto num10;
		}
		case 'u':
			v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
		num10:
			do {
				tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
				v /= 10;
			} while (v);
			s = tmp + sizeof(tmp) - n;
			break;
		case 'p':
			lng = 2;
			put(&k, '0');
			put(&k, 'x');
			/* fall through */
		case 'x':
			v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			do {
				tmp[sizeof(tmp) - 1 - n++] = "0123456789abcdef"[v & 15];
				v >>= 4;
			} while (v);
			s = tmp + sizeof(tmp) - n;
			break;
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			n = strlen(s);
			break;
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			n = 1;
			break;
		case '%':
			tmp[0] = '%';
			n = 1;
			break;
		default:
			put(&k, '%');
			if (!*fmt)
				goto out;
			tmp[0] = *fmt;
			n = 1;
			break;
		}
		size_t total = n + neg;
		if (neg && pad == '0')
			put(&k, '-');
		for (; width > total; width--)
			put(&k, pad);
		if (neg && pad != '0')
			put(&k, '-');
		for (size_t i = 0; i < n; i++)
			put(&k, s[i]);
	}
out:
	if (k.size)
		k.buf[k.len < k.size ? k.len : k.size - 1] = 0;
	return (int)k.len;
}

int snformat(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vformat(buf, size, fmt, ap);
	va_end(ap);
	return r;
}

void print(const char *fmt, ...)
{
	char buf[CMDLINE_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	int n = vformat(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	serial_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}
