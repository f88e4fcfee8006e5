/*
 * TAP devices for virtio-net: open (or create) one by name, or take one
 * an orchestrator opened, always as IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
 * nonblocking, with the 12-byte virtio_net_hdr_v1 and no offloads until
 * the driver has accepted some.
 */
#ifndef VMM_VIRTIO_TAP_H
#define VMM_VIRTIO_TAP_H

#include <net/if.h>
#include <stdbool.h>

#define TAP_VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */

/* Open tap `name`; TUNSETIFF creates it when it does not exist and the
 * process may (CAP_NET_ADMIN). `what` names the option in messages
 * ("--net tap=tap0"). Returns 0 with *fd set, or an exit status (message
 * printed). */
int tap_open(const char *name, const char *what, int *fd);
/* Check that fd is an attached tap opened with IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, make it nonblocking and close-on-exec, and set it up as
 * tap_open() does. Its interface name goes to ifname. Returns 0 or an exit
 * status (message printed). */
int tap_adopt(int fd, const char *what, char ifname[IFNAMSIZ]);
/* TUNSETOFFLOAD: which offloads (TUN_F_*) the tap may hand us. 0 or -errno. */
int tap_set_offload(int fd, unsigned flags);

#endif
