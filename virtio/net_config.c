/* --net parsing and MAC helpers; see net_config.h. */
#include "net_config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../optlist.h"

void net_config_init(struct net_config *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->vhost = NET_VHOST_OFF;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

bool net_parse_mac(const char *s, size_t len, uint8_t mac[6])
{
	uint8_t m[6];
	if (len != 17)
		return false;
	for (unsigned i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':'))
			return false;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	static const uint8_t zero[6];
	if ((m[0] & 1) || memcmp(m, zero, 6) == 0)
		return false; /* multicast / broadcast, or no address at all */
	memcpy(mac, m, 6);
	return true;
}

void net_format_mac(const uint8_t mac[6], char out[NET_MAC_STR])
{
	snprintf(out, NET_MAC_STR, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}

/* As the kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no '/',
 * ':' or whitespace. Printable ASCII only, so messages stay readable. */
bool net_valid_ifname(const char *s, size_t len)
{
	if (len == 0 || len > VMM_NET_IFNAME_MAX)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] > 0x7e || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

static bool parse_fd(const char *s, size_t len, int *fd)
{
	char buf[16];
	if (len == 0 || len >= sizeof(buf))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	memcpy(buf, s, len);
	buf[len] = 0;
	errno = 0;
	long v = strtol(buf, NULL, 10);
	if (errno || v < 3 || v > INT_MAX)
		return false; /* 0..2 are stdio */
	*fd = (int)v;
	return true;
}

enum { SEEN_BACKEND = 1, SEEN_MAC = 2, SEEN_VHOST = 4 };

struct net_parse {
	struct net_config *c;
	unsigned seen;
};

/* One option of a --net value (an optlist_parse() callback). */
static bool apply_option(const struct opt_item *o, void *ctx, char *why, size_t why_size)
{
	struct net_parse *np = ctx;
	struct net_config *c = np->c;
	const char *v = o->val;
	size_t vlen = o->vlen;
	bool tap = opt_key_is(o, "tap"), fd = opt_key_is(o, "fd"), mac = opt_key_is(o, "mac");
	/* The keys exclude each other: at most one of these bits is set. */
	unsigned bit = (tap || fd ? SEEN_BACKEND : 0) | (mac ? SEEN_MAC : 0) |
		       (opt_key_is(o, "vhost") ? SEEN_VHOST : 0);
	if (!bit || !v) {
		snprintf(why, why_size, "unknown option '%.*s'", (int)o->len, o->text);
		return false;
	}
	if (bit == SEEN_BACKEND && (np->seen & bit)) {
		snprintf(why, why_size, "more than one of tap= and fd=");
		return false;
	}
	if (!optlist_once(o, &np->seen, bit, why, why_size))
		return false;
	if (tap) {
		if (!net_valid_ifname(v, vlen)) {
			snprintf(why, why_size,
				 "bad tap name '%.*s' (1..%d characters, no '/', ':' or spaces)",
				 (int)vlen, v, VMM_NET_IFNAME_MAX);
			return false;
		}
		memcpy(c->tap, v, vlen);
		c->tap[vlen] = 0;
	} else if (fd) {
		if (!parse_fd(v, vlen, &c->fd)) {
			snprintf(why, why_size, "bad fd '%.*s' (a descriptor number, 3 or more)",
				 (int)vlen, v);
			return false;
		}
	} else if (mac) {
		if (!net_parse_mac(v, vlen, c->mac)) {
			snprintf(why, why_size,
				 "bad MAC '%.*s' (six hex pairs like 52:54:00:12:34:56, unicast, "
				 "not all zero)",
				 (int)vlen, v);
			return false;
		}
		c->mac_set = true;
	} else if (opt_val_is(o, "auto")) {
		c->vhost = NET_VHOST_AUTO;
	} else if (opt_val_is(o, "on")) {
		c->vhost = NET_VHOST_ON;
	} else if (opt_val_is(o, "off")) {
		c->vhost = NET_VHOST_OFF;
	} else {
		snprintf(why, why_size, "bad value in '%.*s'", (int)o->len, o->text);
		return false;
	}
	return true;
}

bool net_config_parse(const char *arg, struct net_config *c, char *why, size_t why_size)
{
	struct net_parse np = {.c = c};
	net_config_init(c);
	if (!*arg) {
		snprintf(why, why_size, "empty value");
		return false;
	}
	if (!optlist_parse(arg, apply_option, &np, why, why_size))
		return false;
	if (!(np.seen & SEEN_BACKEND)) {
		snprintf(why, why_size, "tap=NAME or fd=N is required");
		return false;
	}
	return true;
}

bool cli_parse_net(const char *arg, struct vm_config *cfg, FILE *err)
{
	char why[160];
	if (cfg->nnets >= VMM_MAX_NETS) {
		fprintf(err, "vmm: --net: too many network devices at '%s' (at most %d)\n", arg,
			VMM_MAX_NETS);
		return false;
	}
	struct net_config *c = &cfg->nets[cfg->nnets];
	if (!net_config_parse(arg, c, why, sizeof(why))) {
		fprintf(err, "vmm: --net: invalid value '%s' (%s; expected %s)\n", arg, why,
			NET_SYNTAX);
		return false;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct net_config *o = &cfg->nets[i];
		const char *what = NULL;
		if (c->tap[0] && strcmp(o->tap, c->tap) == 0)
			what = "the tap is already used by an earlier --net";
		else if (c->fd >= 0 && o->fd == c->fd)
			what = "the fd is already used by an earlier --net";
		if (what) {
			fprintf(err, "vmm: --net: invalid value '%s' (%s)\n", arg, what);
			return false;
		}
	}
	cfg->nnets++;
	return true;
}
