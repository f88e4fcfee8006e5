/*
 * i8042 keyboard controller, enough of it for a guest to probe it quickly
 * and to reset the machine through it.
 *
 * Port 0x64 reads the status register and takes controller commands; port
 * 0x60 is the data port. No keyboard or mouse is attached: a byte sent to
 * either device comes back as 0xFE with the timeout bit set, the way a
 * real controller reports a missing device, so drivers give up at once
 * instead of waiting for a timeout. Pulsing the CPU reset line (command
 * 0xFE, or any 0xF0-0xFF command with bit 0 clear, or writing the output
 * port with bit 0 clear) ends the VM with VMM_EXIT_OK.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "devices.h"

#define I8042_AUX_IRQ 12
#define I8042_KBD_IRQ 1

/* Status register. */
#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04
#define STR_CMD 0x08 /* A2: last write was to the command port */
#define STR_UNLOCKED 0x10
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40
#define STR_PARITY 0x80

/* Controller configuration byte. */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

/* Commands. */
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_PASSWORD_TEST 0xa4
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_INPUT 0xc0
#define CMD_READ_OUTPUT 0xd0
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_READ_TEST 0xe0
#define CMD_PULSE 0xf0 /* 0xf0-0xff: pulse output port bits 0-3 low */

#define DEV_NAK 0xfe

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	struct i8042_state st;
};

static void state_reset(struct i8042_state *st)
{
	memset(st, 0, sizeof(*st));
	/* As firmware leaves it: keyboard interrupt on, translation on, POST
	 * passed. */
	st->ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE;
	st->outport = 0x03; /* reset line inactive (high), A20 enabled */
	st->status = STR_SYS | STR_UNLOCKED;
}

static void update_irqs(struct i8042 *k, bool force)
{
	struct i8042_state *st = &k->st;
	bool aux = st->status & STR_AUXDATA;
	uint8_t kbd_level = st->obf && st->out_irq && !aux && (st->ctr & CTR_KBDINT);
	uint8_t aux_level = st->obf && st->out_irq && aux && (st->ctr & CTR_AUXINT);
	if (force || kbd_level != st->irq1_level) {
		st->irq1_level = kbd_level;
		vm_irq_line(k->vm, I8042_KBD_IRQ, kbd_level);
	}
	if (force || aux_level != st->irq12_level) {
		st->irq12_level = aux_level;
		vm_irq_line(k->vm, I8042_AUX_IRQ, aux_level);
	}
}

/* Put a byte in the output buffer. Replies to controller commands do not
 * interrupt (drivers poll for them); data "from a device" does. */
static void output(struct i8042_state *st, uint8_t byte, bool aux, bool timeout, bool irq)
{
	st->out_data = byte;
	st->obf = 1;
	st->out_irq = irq;
	st->status &= ~(STR_AUXDATA | STR_TIMEOUT | STR_PARITY);
	if (aux)
		st->status |= STR_AUXDATA;
	if (timeout)
		st->status |= STR_TIMEOUT;
}

static void reply(struct i8042_state *st, uint8_t byte)
{
	output(st, byte, false, false, false);
}

static void set_ctr(struct i8042_state *st, uint8_t ctr)
{
	st->ctr = ctr;
	if (ctr & CTR_SYS)
		st->status |= STR_SYS;
	else
		st->status &= ~STR_SYS;
}

static void reset_machine(struct i8042 *k)
{
	vm_request_exit(k->vm, VMM_EXIT_OK);
}

static void write_command(struct i8042 *k, uint8_t cmd)
{
	struct i8042_state *st = &k->st;
	st->pending_cmd = 0;
	if (cmd >= CMD_READ_CTR && cmd < CMD_READ_CTR + 0x20) {
		/* 0x20 reads the configuration byte, 0x21-0x3f controller RAM. */
		reply(st, cmd == CMD_READ_CTR ? st->ctr : 0);
		return;
	}
	if (cmd >= CMD_WRITE_CTR && cmd < CMD_WRITE_CTR + 0x20) {
		st->pending_cmd = cmd; /* the data byte follows on port 0x60 */
		return;
	}
	if (cmd >= CMD_PULSE) {
		if (!(cmd & 0x01))
			reset_machine(k);
		return;
	}
	switch (cmd) {
	case CMD_PASSWORD_TEST:
		reply(st, 0xf1); /* no password installed */
		break;
	case CMD_AUX_DISABLE:
		set_ctr(st, st->ctr | CTR_AUXDIS);
		break;
	case CMD_AUX_ENABLE:
		set_ctr(st, st->ctr & ~CTR_AUXDIS);
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		reply(st, 0x00); /* interface OK */
		break;
	case CMD_SELF_TEST:
		st->status |= STR_SYS;
		st->ctr |= CTR_SYS;
		reply(st, 0x55);
		break;
	case CMD_KBD_DISABLE:
		set_ctr(st, st->ctr | CTR_KBDDIS);
		break;
	case CMD_KBD_ENABLE:
		set_ctr(st, st->ctr & ~CTR_KBDDIS);
		break;
	case CMD_READ_INPUT:
		reply(st, 0x80); /* keyboard not inhibited */
		break;
	case CMD_READ_OUTPUT:
		reply(st, st->outport);
		break;
	case CMD_WRITE_OUTPUT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		st->pending_cmd = cmd;
		break;
	case CMD_READ_TEST:
		reply(st, 0x00);
		break;
	default:
		break; /* unknown or irrelevant (A20 gate, versions...): ignored */
	}
}

static void write_data(struct i8042 *k, uint8_t val)
{
	struct i8042_state *st = &k->st;
	uint8_t cmd = st->pending_cmd;
	st->pending_cmd = 0;
	if (cmd == CMD_WRITE_CTR) {
		set_ctr(st, val);
	} else if (cmd > CMD_WRITE_CTR && cmd < CMD_WRITE_CTR + 0x20) {
		/* controller RAM: not kept */
	} else if (cmd == CMD_WRITE_OUTPUT) {
		st->outport = val;
		if (!(val & 0x01))
			reset_machine(k);
	} else if (cmd == CMD_WRITE_KBD_OBUF) {
		output(st, val, false, false, true);
	} else if (cmd == CMD_WRITE_AUX_OBUF) {
		output(st, val, true, false, true);
	} else if (cmd == CMD_WRITE_AUX) {
		output(st, DEV_NAK, true, true, true); /* no mouse */
	} else {
		/* A byte for the keyboard, which is not there. */
		output(st, DEV_NAK, false, true, true);
	}
}

/* The next queued scancode goes into an empty output buffer, unless the
 * guest disabled the keyboard interface. */
static void pump_keyboard(struct i8042_state *st)
{
	if (st->obf || !st->kbd_qlen || (st->ctr & CTR_KBDDIS))
		return;
	output(st, st->kbd_queue[0], false, false, true);
	st->kbd_qlen--;
	memmove(st->kbd_queue, st->kbd_queue + 1, st->kbd_qlen);
}

static uint8_t read_data(struct i8042_state *st)
{
	st->obf = 0;
	st->out_irq = 0;
	st->status &= ~(STR_TIMEOUT | STR_PARITY);
	return st->out_data; /* with OBF clear, the last byte again */
}

static uint8_t read_status(const struct i8042_state *st)
{
	uint8_t v = st->status & (STR_SYS | STR_UNLOCKED | STR_AUXDATA | STR_TIMEOUT | STR_PARITY);
	if (st->obf)
		v |= STR_OBF;
	else
		v &= ~STR_AUXDATA;
	if (st->last_cmd)
		v |= STR_CMD;
	return v; /* IBF is never set: input is consumed at once */
}

static void i8042_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write,
		     bool cmd_port)
{
	struct i8042 *k = dev;
	if (len == 0)
		return;
	pthread_mutex_lock(&k->lock);
	struct i8042_state *st = &k->st;
	if (offset != 0) {
		/* Not reachable with 1-byte ranges; ignore defensively. */
	} else if (is_write && cmd_port) {
		st->last_cmd = 1;
		write_command(k, data[0]);
	} else if (is_write) {
		st->last_cmd = 0;
		write_data(k, data[0]);
	} else {
		data[0] = cmd_port ? read_status(st) : read_data(st);
	}
	update_irqs(k, false); /* a read of 0x60 drops IRQ 1 ... */
	pump_keyboard(st);
	update_irqs(k, false); /* ... so the next scancode raises it again: an edge */
	pthread_mutex_unlock(&k->lock);
	if (!is_write)
		for (uint32_t i = 1; i < len; i++)
			data[i] = 0xff;
}

static void data_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	i8042_io(dev, offset, data, len, is_write, false);
}

static void cmd_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	i8042_io(dev, offset, data, len, is_write, true);
}

struct i8042 *i8042_create(struct vm *vm)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k) {
		vmm_err("i8042: out of memory");
		return NULL;
	}
	k->vm = vm;
	pthread_mutex_init(&k->lock, NULL);
	state_reset(&k->st);
	/* Two separate 1-byte ranges: 0x61 (system control port B) and the
	 * other ports in between belong to other devices. */
	if (bus_register(&vm->pio, I8042_DATA_PORT, 1, data_io, k, "i8042 data") < 0 ||
	    bus_register(&vm->pio, I8042_CMD_PORT, 1, cmd_io, k, "i8042 command")) {
		/* A registered range cannot be removed; the VM is torn down
		 * right after this failure anyway. */
		return NULL;
	}
	return k;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

bool i8042_send_ctrl_alt_del(struct i8042 *k)
{
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
					0x71, 0xf0, 0x11, 0xf0, 0x14 };
	pthread_mutex_lock(&k->lock);
	struct i8042_state *st = &k->st;
	bool xlate = st->ctr & CTR_XLATE;
	const uint8_t *codes = xlate ? set1 : set2;
	size_t n = xlate ? sizeof(set1) : sizeof(set2);
	bool ok = st->kbd_qlen == 0; /* one sequence at a time */
	if (ok) {
		memcpy(st->kbd_queue + st->kbd_qlen, codes, n);
		st->kbd_qlen = (uint8_t)(st->kbd_qlen + n);
		pump_keyboard(st);
		update_irqs(k, false);
	}
	pthread_mutex_unlock(&k->lock);
	return ok;
}

void i8042_save(const struct i8042 *ck, struct i8042_state *out)
{
	struct i8042 *k = (struct i8042 *)ck;
	pthread_mutex_lock(&k->lock);
	*out = k->st;
	pthread_mutex_unlock(&k->lock);
}

void i8042_restore(struct i8042 *k, const struct i8042_state *in)
{
	pthread_mutex_lock(&k->lock);
	k->st = *in;
	k->st.obf = !!k->st.obf;
	k->st.out_irq = !!k->st.out_irq;
	k->st.last_cmd = !!k->st.last_cmd;
	if (k->st.kbd_qlen > I8042_KBD_QUEUE)
		k->st.kbd_qlen = I8042_KBD_QUEUE;
	update_irqs(k, true); /* drive both lines to what the state says */
	pthread_mutex_unlock(&k->lock);
}
