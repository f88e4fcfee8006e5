/*
 * Legacy platform devices: a 16550A UART (COM1), the i8042 keyboard
 * controller (no keyboard or mouse attached; its reset line ends the VM),
 * and the isa-debug-exit port. Each keeps all of its guest-visible state in one
 * plain struct (struct *_state) so a snapshot can save it later.
 */
#ifndef VMM_HW_DEVICES_H
#define VMM_HW_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../vmm.h"

#define COM1_PORT 0x3f8
#define COM1_IRQ 4
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define DEBUG_EXIT_PORT 0xf4

/* Console: where guest serial output goes and where input comes from.
 * A tty stdin is put in raw mode and restored on every exit path
 * (normal return, exit(), fatal signals). */
struct console *console_open(const struct vm_config *cfg);
int console_out_fd(const struct console *c);
int console_in_fd(const struct console *c); /* -1: no input */
void console_close(struct console *c);	    /* restores the tty */
/* True when input comes from a terminal in raw mode: the serial then
 * interprets "Ctrl-A x" (stop the VMM) and "Ctrl-A Ctrl-A" (send Ctrl-A). */
bool console_in_is_tty(const struct console *c);
/* A console over fds the caller owns (tests, embedders): nothing is put in
 * raw mode or closed; `escapes` enables the Ctrl-A handling. */
struct console *console_open_fds(int out_fd, int in_fd, bool escapes);

/* COM1 on the pio bus, IRQ through vm_irq_line(); input is read from the
 * console's input fd on vm->loop, with back-pressure (never drops bytes). */
struct serial *serial_create(struct vm *vm, struct console *c);
void serial_destroy(struct serial *s);

#define SERIAL_FIFO_SIZE 16

/* Everything the guest can observe about the UART; plain data, no
 * pointers, so it can be saved and restored as is. */
struct serial_state {
	uint8_t ier;	      /* interrupt enable (low 4 bits) */
	uint8_t lcr;	      /* line control; bit 7 is DLAB */
	uint8_t mcr;	      /* modem control (low 5 bits) */
	uint8_t lsr_err;      /* latched line-status errors (OE/PE/FE/BI) */
	uint8_t msr;	      /* modem status, inputs (7:4) and deltas (3:0) */
	uint8_t scr;	      /* scratch */
	uint8_t dll, dlm;     /* divisor latch */
	uint8_t fcr;	      /* FIFO control as last programmed (enable, DMA, trigger) */
	uint8_t thr_ipending; /* THR-empty interrupt condition latched */
	uint8_t rbr;	      /* last byte handed to the guest */
	uint8_t irq_level;    /* level currently driven on COM1_IRQ */
	uint8_t rx_head, rx_count;
	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
};

void serial_save(const struct serial *s, struct serial_state *out);
/* Returns 0, or -1 if `in` is inconsistent (nothing is changed then). */
int serial_restore(struct serial *s, const struct serial_state *in);

/* 0xFE on port 0x64 → vm_request_exit(vm, VMM_EXIT_OK). */
struct i8042 *i8042_create(struct vm *vm);
void i8042_destroy(struct i8042 *k);
/* Type Ctrl-Alt-Del (press Ctrl, Alt, Delete; release them in reverse):
 * scancode set 1 while the controller translates (the default), set 2
 * otherwise, handed to the guest one byte per read of port 0x60, each
 * with IRQ 1, as keyboard data. A guest whose i8042 driver does not probe
 * for a keyboard (Linux: i8042.dumbkbd) reboots on it. Returns false if
 * the previous sequence is still being read. */
bool i8042_send_ctrl_alt_del(struct i8042 *k);

#define I8042_KBD_QUEUE 16

struct i8042_state {
	uint8_t ctr;	     /* controller configuration ("command") byte */
	uint8_t outport;     /* output port (bit 0: CPU reset line, bit 1: A20) */
	uint8_t status;	     /* status register bits other than OBF/IBF/A2 */
	uint8_t obf;	     /* output buffer full */
	uint8_t out_data;    /* output buffer (last value stays readable) */
	uint8_t out_irq;     /* output buffer holds port data that interrupts */
	uint8_t pending_cmd; /* command waiting for its data byte, 0: none */
	uint8_t last_cmd;    /* A2: last write went to the command port */
	uint8_t irq1_level, irq12_level;
	uint8_t kbd_qlen; /* scancodes waiting behind the output buffer */
	uint8_t kbd_queue[I8042_KBD_QUEUE];
};

void i8042_save(const struct i8042 *k, struct i8042_state *out);
void i8042_restore(struct i8042 *k, const struct i8042_state *in);

/* Write V to port 0xf4 → vm_request_exit(vm, (V << 1) | 1). The caller
 * creates it only when cfg->debug_exit is set. Writes of 1, 2 or 4 bytes at
 * 0xf4 use the low byte; reads return all-ones. */
struct debug_exit *debug_exit_create(struct vm *vm);
void debug_exit_destroy(struct debug_exit *d);

#endif
