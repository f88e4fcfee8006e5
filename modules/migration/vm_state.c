/*
 * The whole VM's state but RAM: its configuration, KVM's clock, irqchip
 * (both PICs and the IOAPIC) and PIT, the legacy devices, every virtio
 * device, and every vCPU. Saved on the event loop thread with the vCPUs
 * parked and the devices quiet; restored into a VM built anew from the
 * saved configuration, before any vCPU runs.
 */
#include <errno.h>
#include <jansson.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "api/config_json.h"
#include "hw/devices.h"
#include "log.h"
#include "mig.h"
#include "vcpu.h"
#include "virtio/mmio.h"
#include "virtio/state.h"
#include "vmm.h"

static const unsigned irqchips[] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
				    KVM_IRQCHIP_IOAPIC};

static int vm_get(struct vm *vm, unsigned long req, const char *name, void *arg)
{
	if (ioctl(vm->vm_fd, req, arg) < 0) {
		vmm_err("%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int save_kvm(struct vm *vm, struct blob *b)
{
	struct kvm_clock_data clock = {0};
	struct kvm_pit_state2 pit;
	if (vm_get(vm, KVM_GET_CLOCK, "KVM_GET_CLOCK", &clock) ||
	    vm_get(vm, KVM_GET_PIT2, "KVM_GET_PIT2", &pit))
		return -1;
	snap_add(b, SEC_CLOCK, 0, &clock, sizeof(clock));
	snap_add(b, SEC_PIT, 0, &pit, sizeof(pit));
	for (size_t i = 0; i < sizeof(irqchips) / sizeof(irqchips[0]); i++) {
		struct kvm_irqchip chip = {.chip_id = irqchips[i]};
		if (vm_get(vm, KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", &chip))
			return -1;
		snap_add(b, SEC_IRQCHIP, irqchips[i], &chip, sizeof(chip));
	}
	return 0;
}

static int save_virtio(struct vm *vm, struct blob *b, char *why, size_t n)
{
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		size_t size = virtio_state_size(d);
		uint8_t *buf = calloc(1, sizeof(struct snap_virtio) + (size ? size : 1));
		if (!buf) {
			snprintf(why, n, "out of memory");
			return -1;
		}
		struct snap_virtio h = {.device_id = d->ops->device_id};
		memcpy(buf, &h, sizeof(h));
		int rc = virtio_state_save(d, buf + sizeof(h), size, why, n);
		if (rc == 0)
			snap_add(b, SEC_VIRTIO, i, buf, sizeof(h) + size);
		free(buf);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int save_config(struct vm *vm, struct blob *b)
{
	json_t *j = cfgjson_dump(vm->cfg);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -1;
	snap_add(b, SEC_CONFIG, 0, text, strlen(text));
	free(text);
	return 0;
}

int vm_state_save(struct vm *vm, struct blob *b, uint32_t layers, char *why, size_t n)
{
	struct snap_meta meta = {
	    .mem_size = vm->mem.size, .ncpus = vm->ncpus, .nvirtio = vm->nvirtio, .layers = layers};
	snap_add(b, SEC_META, 0, &meta, sizeof(meta));
	if (save_config(vm, b) < 0 || save_kvm(vm, b) < 0) {
		snprintf(why, n, "%s", vmm_log_last_error());
		return -1;
	}
	struct serial_state ser;
	struct i8042_state kbd;
	serial_save(vm->serial, &ser);
	i8042_save(vm->i8042, &kbd);
	snap_add(b, SEC_SERIAL, 0, &ser, sizeof(ser));
	snap_add(b, SEC_I8042, 0, &kbd, sizeof(kbd));
	if (save_virtio(vm, b, why, n) < 0)
		return -1;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vcpu_state_save(&vm->vcpus[i], b) < 0) {
			snprintf(why, n, "%s", vmm_log_last_error());
			return -1;
		}
	}
	if (b->oom) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- checks: everything a restore needs is there, sized right ---- */

static bool need(const struct snap_view *s, uint32_t type, uint32_t inst, size_t size, char *why,
		 size_t n)
{
	const struct snap_section *sec = snap_find(s, type, inst);
	if (sec && sec->len == size)
		return true;
	snprintf(why, n, "section %#x/%u %s", type, inst,
		 sec ? "has the wrong size" : "is missing");
	return false;
}

int vm_state_check_meta(const struct snap_view *s, struct snap_meta *meta, char *why, size_t n)
{
	if (!need(s, SEC_META, 0, sizeof(*meta), why, n))
		return -1;
	memcpy(meta, snap_find(s, SEC_META, 0)->data, sizeof(*meta));
	if (meta->mem_size != s->hdr.mem_size || meta->ncpus != s->hdr.ncpus ||
	    meta->nvirtio > VMM_MAX_VIRTIO || meta->layers == 0 || meta->layers > MIG_MAX_LAYERS) {
		snprintf(why, n, "inconsistent snapshot description");
		return -1;
	}
	if (!snap_find(s, SEC_CONFIG, 0)) {
		snprintf(why, n, "the VM configuration is missing");
		return -1;
	}
	return 0;
}

static int check_virtio(struct vm *vm, const struct snap_view *s, char *why, size_t n)
{
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		const struct snap_section *sec = snap_find(s, SEC_VIRTIO, i);
		struct snap_virtio h;
		if (!sec || sec->len < sizeof(h)) {
			snprintf(why, n, "virtio device %u: no saved state", i);
			return -1;
		}
		memcpy(&h, sec->data, sizeof(h));
		if (h.device_id != vm->virtio[i]->ops->device_id) {
			snprintf(why, n, "virtio device %u: saved as device type %u, built as %u",
				 i, h.device_id, vm->virtio[i]->ops->device_id);
			return -1;
		}
		if (virtio_state_check(vm->virtio[i], sec->data + sizeof(h), sec->len - sizeof(h),
				       why, n) < 0)
			return -1;
	}
	return 0;
}

int vm_state_check(struct vm *vm, const struct snap_view *s, char *why, size_t n)
{
	struct snap_meta meta;
	if (vm_state_check_meta(s, &meta, why, n) < 0)
		return -1;
	if (meta.mem_size != vm->mem.size || meta.ncpus != vm->cfg->cpus ||
	    meta.nvirtio != vm->nvirtio) {
		snprintf(why, n,
			 "the snapshot's VM (%u vCPUs, %llu MiB, %u virtio devices) differs "
			 "from the one built from its configuration",
			 meta.ncpus, (unsigned long long)(meta.mem_size / MIB), meta.nvirtio);
		return -1;
	}
	if (!need(s, SEC_CLOCK, 0, sizeof(struct kvm_clock_data), why, n) ||
	    !need(s, SEC_PIT, 0, sizeof(struct kvm_pit_state2), why, n) ||
	    !need(s, SEC_SERIAL, 0, sizeof(struct serial_state), why, n) ||
	    !need(s, SEC_I8042, 0, sizeof(struct i8042_state), why, n))
		return -1;
	for (size_t i = 0; i < sizeof(irqchips) / sizeof(irqchips[0]); i++)
		if (!need(s, SEC_IRQCHIP, irqchips[i], sizeof(struct kvm_irqchip), why, n))
			return -1;
	size_t xs = vcpu_xsave_size(vm->vm_fd);
	for (unsigned i = 0; i < meta.ncpus; i++)
		if (vcpu_state_check(s, i, xs, why, n) < 0)
			return -1;
	return check_virtio(vm, s, why, n);
}

/* ---- restore ---- */

static int vm_set(struct vm *vm, const struct snap_view *s, uint32_t type, uint32_t inst,
		  unsigned long req, const char *name)
{
	const struct snap_section *sec = snap_find(s, type, inst);
	void *buf = malloc(sec->len);
	if (!buf)
		return -1;
	memcpy(buf, sec->data, sec->len);
	int rc = vm_get(vm, req, name, buf);
	free(buf);
	return rc;
}

static int restore_devices(struct vm *vm, const struct snap_view *s, char *why, size_t n)
{
	struct serial_state ser;
	struct i8042_state kbd;
	memcpy(&ser, snap_find(s, SEC_SERIAL, 0)->data, sizeof(ser));
	memcpy(&kbd, snap_find(s, SEC_I8042, 0)->data, sizeof(kbd));
	if (serial_restore(vm->serial, &ser) < 0) {
		snprintf(why, n, "the serial port's saved state is malformed");
		return -1;
	}
	i8042_restore(vm->i8042, &kbd);
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		const struct snap_section *sec = snap_find(s, SEC_VIRTIO, i);
		size_t h = sizeof(struct snap_virtio);
		if (virtio_state_restore(vm->virtio[i], sec->data + h, sec->len - h, why, n) < 0)
			return -1;
	}
	return 0;
}

int vm_state_create_vcpus(struct vm *vm, unsigned ncpus, char *why, size_t n)
{
	vm->ncpus = ncpus;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vcpu_create(vm, i)) {
			snprintf(why, n, "%s", vmm_log_last_error());
			return -1;
		}
	}
	return 0;
}

int vm_state_load(struct vm *vm, const struct snap_view *s, char *why, size_t n)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vcpu_state_restore(&vm->vcpus[i], s) < 0) {
			snprintf(why, n, "%s", vmm_log_last_error());
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(irqchips) / sizeof(irqchips[0]); i++)
		if (vm_set(vm, s, SEC_IRQCHIP, irqchips[i], KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP"))
			goto kvm_failed;
	if (vm_set(vm, s, SEC_PIT, 0, KVM_SET_PIT2, "KVM_SET_PIT2"))
		goto kvm_failed;
	if (restore_devices(vm, s, why, n) < 0)
		return -1;
	/* The clock last: the guest's time goes on from the moment it was
	 * saved, as if it had been paused meanwhile. */
	struct kvm_clock_data clock;
	memcpy(&clock, snap_find(s, SEC_CLOCK, 0)->data, sizeof(clock));
	clock.flags = 0;
	if (vm_get(vm, KVM_SET_CLOCK, "KVM_SET_CLOCK", &clock))
		goto kvm_failed;
	return 0;
kvm_failed:
	snprintf(why, n, "%s", vmm_log_last_error());
	return -1;
}
