/* TAP devices: open, create, adopt, offloads. See tap.h. */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../log.h"
#include "../vmm.h"

#define TUN_DEVICE "/dev/net/tun"

int tap_set_offload(int fd, unsigned flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

/* The part both tap_open() and tap_adopt() do. */
static int setup(int fd, const char *what)
{
	int len = TAP_VNET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &len) < 0) {
		vmm_err("%s: cannot set the vnet header size: %s", what, strerror(errno));
		return VMM_EXIT_RESOURCE;
	}
	int rc = tap_set_offload(fd, 0);
	if (rc < 0) {
		vmm_err("%s: cannot turn the tap's offloads off: %s", what, strerror(-rc));
		return VMM_EXIT_RESOURCE;
	}
	return 0;
}

static int setiff_error(const char *name, const char *what, int err)
{
	bool exists = if_nametoindex(name) != 0;
	switch (err) {
	case EPERM:
	case EACCES:
		if (!exists)
			vmm_err("%s: there is no tap '%s' and this process may not create one "
				"(needs CAP_NET_ADMIN; or create it first: ip tuntap add %s mode tap "
				"user USER)",
				what, name, name);
		else
			vmm_err("%s: permission denied on tap '%s' (it must belong to this user: "
				"ip tuntap add %s mode tap user USER; or run with CAP_NET_ADMIN)",
				what, name, name);
		break;
	case EBUSY:
		vmm_err("%s: tap '%s' is in use by another process", what, name);
		break;
	case EINVAL:
		vmm_err("%s: '%s' exists but cannot be opened as a single-queue tap with "
			"virtio-net headers (a tun device, or a multi-queue tap?)",
			what, name);
		break;
	default:
		vmm_err("%s: cannot open tap '%s': %s", what, name, strerror(err));
	}
	return VMM_EXIT_RESOURCE;
}

int tap_open(const char *name, const char *what, int *fdp)
{
	int fd = open(TUN_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err == ENOENT || err == ENODEV || err == ENXIO)
			vmm_err("%s: %s does not exist (is the tun module loaded?)", what,
				TUN_DEVICE);
		else
			vmm_err("%s: cannot open %s: %s", what, TUN_DEVICE, strerror(err));
		return VMM_EXIT_RESOURCE;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = errno;
		close(fd);
		return setiff_error(name, what, err);
	}
	int rc = setup(fd, what);
	if (rc) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

int tap_adopt(int fd, const char *what, char ifname[IFNAMSIZ])
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		vmm_err("%s: descriptor %d is not open", what, fd);
		return VMM_EXIT_RESOURCE;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		vmm_err("%s: descriptor %d is not an attached tap (TUNGETIFF: %s)", what, fd,
			strerror(errno));
		return VMM_EXIT_RESOURCE;
	}
	const short need = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if ((ifr.ifr_flags & need) != need || (ifr.ifr_flags & IFF_TUN)) {
		vmm_err("%s: descriptor %d (%.*s) was not opened with IFF_TAP | IFF_NO_PI | "
			"IFF_VNET_HDR (flags 0x%x)",
			what, fd, IFNAMSIZ, ifr.ifr_name, (unsigned)(unsigned short)ifr.ifr_flags);
		return VMM_EXIT_RESOURCE;
	}
	if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		vmm_err("%s: descriptor %d: fcntl: %s", what, fd, strerror(errno));
		return VMM_EXIT_RESOURCE;
	}
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	ifname[IFNAMSIZ - 1] = 0;
	return setup(fd, what);
}
