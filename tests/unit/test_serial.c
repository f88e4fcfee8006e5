/*
 * hw/serial.c: 16550A register semantics, interrupt identification and
 * THRE behaviour, FIFO and loopback, host input back-pressure through the
 * real event loop, the Ctrl-A escape, save/restore, and garbage accesses.
 * The interrupt line is checked through serial_save()'s irq_level.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <cmocka.h>

#include "devtest.h"

#define RBR (COM1_PORT + 0)
#define THR (COM1_PORT + 0)
#define IER (COM1_PORT + 1)
#define IIR (COM1_PORT + 2)
#define FCR (COM1_PORT + 2)
#define LCR (COM1_PORT + 3)
#define MCR (COM1_PORT + 4)
#define LSR (COM1_PORT + 5)
#define MSR (COM1_PORT + 6)
#define SCR (COM1_PORT + 7)

struct fx {
	struct vm *vm;
	struct console *con;
	struct serial *s;
	int out[2]; /* guest output: read end [0] */
	int in[2];  /* guest input: write end [1] */
};

static void fx_open(struct fx *f, bool with_input, bool escapes)
{
	memset(f, 0, sizeof(*f));
	f->in[0] = f->in[1] = -1;
	f->vm = devtest_vm_new();
	assert_int_equal(pipe2(f->out, O_CLOEXEC | O_NONBLOCK), 0);
	if (with_input)
		assert_int_equal(pipe2(f->in, O_CLOEXEC), 0);
	f->con = console_open_fds(f->out[1], f->in[0], escapes);
	assert_non_null(f->con);
	f->s = serial_create(f->vm, f->con);
	assert_non_null(f->s);
}

static void fx_close(struct fx *f)
{
	serial_destroy(f->s);
	console_close(f->con);
	for (int i = 0; i < 2; i++) {
		close(f->out[i]);
		if (f->in[i] >= 0)
			close(f->in[i]);
	}
	devtest_vm_free(f->vm);
}

static uint8_t irq(struct fx *f)
{
	struct serial_state st;
	serial_save(f->s, &st);
	return st.irq_level;
}

static size_t drain_out(struct fx *f, char *buf, size_t cap)
{
	ssize_t n = read(f->out[0], buf, cap);
	return n > 0 ? (size_t)n : 0;
}

static int pipe_pending(int fd)
{
	int n = -1;
	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static void reset_values(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	assert_int_equal(devtest_in8(f.vm, IER), 0x00);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x01);
	assert_int_equal(devtest_in8(f.vm, LCR), 0x00);
	assert_int_equal(devtest_in8(f.vm, MCR), 0x00);
	assert_int_equal(devtest_in8(f.vm, LSR), 0x60);
	assert_int_equal(devtest_in8(f.vm, MSR), 0xb0); /* CTS, DSR, DCD */
	assert_int_equal(irq(&f), 0);
	fx_close(&f);
}

static void register_masks(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	for (unsigned v = 0; v < 256; v++) {
		devtest_out8(f.vm, SCR, (uint8_t)v);
		assert_int_equal(devtest_in8(f.vm, SCR), v);
	}
	devtest_out8(f.vm, IER, 0xf0); /* upper bits do not exist on a 16550A */
	assert_int_equal(devtest_in8(f.vm, IER), 0x00);
	devtest_out8(f.vm, IER, 0x0f);
	assert_int_equal(devtest_in8(f.vm, IER), 0x0f);
	devtest_out8(f.vm, IER, 0);
	devtest_out8(f.vm, MCR, 0xe3);
	assert_int_equal(devtest_in8(f.vm, MCR), 0x03);
	devtest_out8(f.vm, LCR, 0x1b);
	assert_int_equal(devtest_in8(f.vm, LCR), 0x1b);
	/* LSR and MSR writes are ignored. */
	devtest_out8(f.vm, LSR, 0xff);
	assert_int_equal(devtest_in8(f.vm, LSR), 0x60);
	fx_close(&f);
}

static void dlab_divisor(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	devtest_out8(f.vm, IER, 0x05);
	devtest_out8(f.vm, LCR, 0x83);
	devtest_out8(f.vm, COM1_PORT + 0, 0x01); /* DLL, not THR */
	devtest_out8(f.vm, COM1_PORT + 1, 0x02); /* DLM, not IER */
	assert_int_equal(devtest_in8(f.vm, COM1_PORT + 0), 0x01);
	assert_int_equal(devtest_in8(f.vm, COM1_PORT + 1), 0x02);
	char buf[8];
	assert_int_equal(drain_out(&f, buf, sizeof(buf)), 0);
	devtest_out8(f.vm, LCR, 0x03);
	assert_int_equal(devtest_in8(f.vm, IER), 0x05);
	devtest_out8(f.vm, LCR, 0x83);
	assert_int_equal(devtest_in8(f.vm, COM1_PORT + 0), 0x01);
	devtest_out8(f.vm, LCR, 0x03);
	/* IIR is reachable whatever DLAB says. */
	devtest_out8(f.vm, LCR, 0x80);
	assert_int_equal(devtest_in8(f.vm, IIR) & 0x0f, 0x01);
	fx_close(&f);
}

static void transmit(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	const char *msg = "Hello, 16550A\r\n";
	for (const char *p = msg; *p; p++) {
		assert_true(devtest_in8(f.vm, LSR) & 0x20);
		devtest_out8(f.vm, THR, (uint8_t)*p);
	}
	char buf[64] = {0};
	assert_int_equal(drain_out(&f, buf, sizeof(buf) - 1), strlen(msg));
	assert_string_equal(buf, msg);
	/* LSR: THR empty and transmitter empty, always. */
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x60, 0x60);
	fx_close(&f);
}

static void thre_interrupt(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	/* Enabling ETBEI with THR empty raises THRE. */
	devtest_out8(f.vm, IER, 0x02);
	assert_int_equal(irq(&f), 1);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x02);
	/* Reading IIR with THRE as the source cleared it. */
	assert_int_equal(irq(&f), 0);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x01);
	/* Linux's THRE test: IER off and on again re-asserts it. */
	devtest_out8(f.vm, IER, 0x00);
	devtest_out8(f.vm, IER, 0x02);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x02);
	assert_int_equal(irq(&f), 0);
	/* Rewriting IER with ETBEI already set does not. */
	devtest_out8(f.vm, IER, 0x02);
	assert_int_equal(irq(&f), 0);
	/* A THR write (transmitted at once) raises it again. */
	devtest_out8(f.vm, THR, 'x');
	assert_int_equal(irq(&f), 1);
	/* Disabling ETBEI drops the line; the condition stays latched. */
	devtest_out8(f.vm, IER, 0x00);
	assert_int_equal(irq(&f), 0);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x01);
	/* With ETBEI clear, THR writes never interrupt. */
	devtest_out8(f.vm, THR, 'y');
	assert_int_equal(irq(&f), 0);
	/* In FIFO mode IIR has the FIFO bits. */
	devtest_out8(f.vm, FCR, 0x01);
	devtest_out8(f.vm, IER, 0x02);
	assert_int_equal(devtest_in8(f.vm, IIR), 0xc2);
	assert_int_equal(devtest_in8(f.vm, IIR), 0xc1);
	fx_close(&f);
}

static void loopback(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	/* Linux's probe: MCR = LOOP | OUT2 | RTS must read MSR 0x90. */
	devtest_out8(f.vm, MCR, 0x1a);
	assert_int_equal(devtest_in8(f.vm, MSR) & 0xf0, 0x90);
	devtest_out8(f.vm, MCR, 0x1f);
	uint8_t msr = devtest_in8(f.vm, MSR);
	assert_int_equal(msr & 0xf0, 0xf0);
	assert_int_equal(msr & 0x0f, 0x02);		    /* DSR went 0 -> 1 */
	assert_int_equal(devtest_in8(f.vm, MSR) & 0x0f, 0); /* deltas clear on read */
	/* RI falling edge sets TERI. */
	devtest_out8(f.vm, MCR, 0x1b);
	assert_int_equal(devtest_in8(f.vm, MSR), 0xb4);

	devtest_out8(f.vm, THR, 'L');
	char buf[8];
	assert_int_equal(drain_out(&f, buf, sizeof(buf)), 0); /* nothing left the UART */
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0x01);
	assert_int_equal(devtest_in8(f.vm, RBR), 'L');
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0x00);
	/* Out of loopback, output flows again and the line is connected. */
	devtest_out8(f.vm, MCR, 0x0b);
	assert_int_equal(devtest_in8(f.vm, MSR) & 0xf0, 0xb0);
	devtest_out8(f.vm, THR, 'O');
	assert_int_equal(drain_out(&f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'O');
	fx_close(&f);
}

static void fifo_and_overrun(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	devtest_out8(f.vm, MCR, 0x10);
	/* 16450 mode: one holding byte; a second overwrites and sets OE. */
	devtest_out8(f.vm, THR, 'a');
	devtest_out8(f.vm, THR, 'b');
	uint8_t lsr = devtest_in8(f.vm, LSR);
	assert_int_equal(lsr & 0x03, 0x03);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x02, 0); /* OE clears on read */
	assert_int_equal(devtest_in8(f.vm, RBR), 'b');
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	assert_int_equal(devtest_in8(f.vm, RBR), 'b'); /* empty: last byte again */

	/* FIFO mode: 16 bytes kept in order, the 17th is lost with OE. */
	devtest_out8(f.vm, FCR, 0x07);
	assert_int_equal(devtest_in8(f.vm, IIR) & 0xc0, 0xc0);
	for (int i = 0; i < 17; i++)
		devtest_out8(f.vm, THR, (uint8_t)('A' + i));
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x03, 0x03);
	for (int i = 0; i < 16; i++)
		assert_int_equal(devtest_in8(f.vm, RBR), 'A' + i);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);

	/* FCR bit 1 clears the receive FIFO. */
	devtest_out8(f.vm, THR, 'z');
	devtest_out8(f.vm, FCR, 0x03);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	/* Leaving FIFO mode clears it as well. */
	devtest_out8(f.vm, THR, 'z');
	devtest_out8(f.vm, FCR, 0x00);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	assert_int_equal(devtest_in8(f.vm, IIR) & 0xc0, 0x00);
	fx_close(&f);
}

static void trigger_level(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	devtest_out8(f.vm, MCR, 0x10);
	devtest_out8(f.vm, FCR, 0xc1); /* trigger at 14 */
	devtest_out8(f.vm, IER, 0x01);
	assert_int_equal(irq(&f), 0);
	for (int i = 0; i < 13; i++)
		devtest_out8(f.vm, THR, (uint8_t)i);
	assert_int_equal(devtest_in8(f.vm, IIR), 0xcc); /* below trigger: timeout */
	assert_int_equal(irq(&f), 1);
	devtest_out8(f.vm, THR, 13);
	assert_int_equal(devtest_in8(f.vm, IIR), 0xc4); /* at trigger: data available */
	/* Reading IIR does not clear receive interrupts; draining does. */
	assert_int_equal(irq(&f), 1);
	for (int i = 0; i < 14; i++)
		assert_int_equal(devtest_in8(f.vm, RBR), i);
	assert_int_equal(devtest_in8(f.vm, IIR), 0xc1);
	assert_int_equal(irq(&f), 0);
	fx_close(&f);
}

static void iir_priority(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	devtest_out8(f.vm, MCR, 0x10);
	devtest_out8(f.vm, MSR, 0);    /* no-op */
	devtest_out8(f.vm, MCR, 0x11); /* DTR -> DSR: a modem status delta */
	devtest_out8(f.vm, THR, '1');
	devtest_out8(f.vm, THR, '2'); /* overrun in 16450 mode */
	devtest_out8(f.vm, IER, 0x0f);
	assert_int_equal(irq(&f), 1);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x06); /* line status first */
	assert_int_equal(devtest_in8(f.vm, IIR), 0x06); /* IIR read does not clear it */
	devtest_in8(f.vm, LSR);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x04); /* then received data */
	devtest_in8(f.vm, RBR);
	assert_int_equal(irq(&f), 1);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x02); /* then THR empty */
	assert_int_equal(devtest_in8(f.vm, IIR), 0x00); /* then modem status */
	assert_int_equal(irq(&f), 1);
	devtest_in8(f.vm, MSR);
	assert_int_equal(devtest_in8(f.vm, IIR), 0x01);
	assert_int_equal(irq(&f), 0);
	fx_close(&f);
}

static void input_backpressure(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, true, false);
	devtest_out8(f.vm, FCR, 0x01);
	devtest_out8(f.vm, IER, 0x01);
	enum { TOTAL = 1000 };
	uint8_t sent[TOTAL];
	for (int i = 0; i < TOTAL; i++)
		sent[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(write(f.in[1], sent, TOTAL), TOTAL);

	uint8_t got[TOTAL];
	int n = 0, idle_rounds = 0;
	while (n < TOTAL) {
		int ev = devtest_pump(f.vm, 0);
		struct serial_state st;
		serial_save(f.s, &st);
		assert_true(st.rx_count <= SERIAL_FIFO_SIZE);
		if (st.rx_count == SERIAL_FIFO_SIZE) {
			/* Full: the fd is no longer polled, so the loop is idle
			 * (no busy loop) and nothing was lost from the pipe. */
			assert_int_equal(devtest_pump(f.vm, 0), 0);
			assert_int_equal(pipe_pending(f.in[0]), TOTAL - n - SERIAL_FIFO_SIZE);
			assert_int_equal(st.irq_level, 1);
		}
		if (ev == 0 && st.rx_count == 0)
			assert_true(++idle_rounds < 100);
		/* The guest drains what is there. */
		while (devtest_in8(f.vm, LSR) & 0x01)
			got[n++] = devtest_in8(f.vm, RBR);
	}
	assert_memory_equal(got, sent, TOTAL);
	assert_int_equal(irq(&f), 0);

	/* EOF: reading stops, and the loop does not spin on the hang-up. */
	close(f.in[1]);
	f.in[1] = -1;
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_pump(f.vm, 0), 0);
	assert_int_equal(devtest_pump(f.vm, 50), 0);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	fx_close(&f);
}

static void input_paused_in_loopback(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, true, false);
	devtest_out8(f.vm, MCR, 0x10);
	assert_int_equal(write(f.in[1], "abc", 3), 3);
	/* The line is disconnected in loopback: the bytes wait in the pipe. */
	devtest_pump(f.vm, 50);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	assert_int_equal(pipe_pending(f.in[0]), 3);
	devtest_out8(f.vm, MCR, 0x00);
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, RBR), 'a'); /* 16450 mode: one at a time */
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, RBR), 'b');
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, RBR), 'c');
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	fx_close(&f);
}

static void input_from_regular_file(void **state)
{
	(void)state;
	char path[] = "/tmp/vmm-test-serial-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "file input", 10), 10);
	lseek(fd, 0, SEEK_SET);

	struct vm *vm = devtest_vm_new();
	struct console *con = console_open_fds(-1, fd, false);
	struct serial *s = serial_create(vm, con);
	assert_non_null(s);
	devtest_out8(vm, FCR, 0x01);
	char got[16] = {0};
	int n = 0;
	for (int i = 0; i < 100 && n < 10; i++)
		while (devtest_in8(vm, LSR) & 0x01)
			got[n++] = (char)devtest_in8(vm, RBR);
	assert_string_equal(got, "file input");
	assert_int_equal(devtest_pump(vm, 0), 0);
	serial_destroy(s);
	console_close(con);
	close(fd);

	/* /dev/null: EOF at once, never data, no spinning. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	con = console_open_fds(-1, fd, false);
	struct vm *vm2 = devtest_vm_new();
	s = serial_create(vm2, con);
	assert_non_null(s);
	for (int i = 0; i < 10; i++)
		assert_int_equal(devtest_in8(vm2, LSR) & 0x01, 0);
	assert_int_equal(devtest_pump(vm2, 0), 0);
	serial_destroy(s);
	console_close(con);
	close(fd);
	devtest_vm_free(vm);
	devtest_vm_free(vm2);
}

/* Input refilled within the guest's own access (a file on stdin) still
 * drives the interrupt line from the final state. */
static void refill_updates_irq(void **state)
{
	(void)state;
	char path[] = "/tmp/vmm-test-serial-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "ab", 2), 2);
	lseek(fd, 0, SEEK_SET);
	struct vm *vm = devtest_vm_new();
	struct console *con = console_open_fds(-1, fd, false);
	struct serial *s = serial_create(vm, con);
	assert_non_null(s);
	struct serial_state st;
	devtest_out8(vm, IER, 0x01); /* 16450 mode: one byte at a time */
	serial_save(s, &st);
	assert_int_equal(st.irq_level, 1);
	assert_int_equal(devtest_in8(vm, RBR), 'a');
	serial_save(s, &st);
	assert_int_equal(st.irq_level, 1); /* 'b' arrived at once */
	assert_int_equal(devtest_in8(vm, RBR), 'b');
	serial_save(s, &st);
	assert_int_equal(st.irq_level, 0);
	serial_destroy(s);
	console_close(con);
	close(fd);
	devtest_vm_free(vm);
}

/* Input that arrived before the guest's driver reset the FIFOs is not
 * lost to the reset; loopback bytes are. */
static void fifo_reset_keeps_host_input(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, true, false);
	devtest_out8(f.vm, FCR, 0x01);
	assert_int_equal(write(f.in[1], "typed ahead!", 12), 12);
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 1);
	/* The reset sequence Linux uses at startup. */
	devtest_out8(f.vm, FCR, 0x01);
	devtest_out8(f.vm, FCR, 0x07);
	devtest_out8(f.vm, FCR, 0x00);
	devtest_out8(f.vm, FCR, 0x81);
	char got[16] = {0};
	int n = 0;
	for (int i = 0; i < 100 && n < 12; i++) {
		devtest_pump(f.vm, 0);
		while (devtest_in8(f.vm, LSR) & 0x01)
			got[n++] = (char)devtest_in8(f.vm, RBR);
	}
	assert_string_equal(got, "typed ahead!");
	/* Loopback data is the guest's own: a reset discards it. */
	devtest_out8(f.vm, MCR, 0x10);
	devtest_out8(f.vm, THR, 'L');
	devtest_out8(f.vm, FCR, 0x03);
	devtest_out8(f.vm, MCR, 0x00);
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	fx_close(&f);
}

static void escape_sequences(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, true, true);
	devtest_out8(f.vm, FCR, 0x01);
	/* a, Ctrl-A Ctrl-A (a literal Ctrl-A), Ctrl-A q (dropped), b */
	assert_int_equal(write(f.in[1], "a\x01\x01\x01qb", 6), 6);
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, RBR), 'a');
	assert_int_equal(devtest_in8(f.vm, RBR), 0x01);
	assert_int_equal(devtest_in8(f.vm, RBR), 'b');
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	/* Ctrl-A split across reads, then x: stop the VMM. */
	assert_int_equal(write(f.in[1], "\x01", 1), 1);
	devtest_pump(f.vm, 100);
	assert_int_equal(write(f.in[1], "x", 1), 1);
	devtest_pump(f.vm, 100);
	assert_int_equal(atomic_load(&f.vm->exit_status), VMM_EXIT_SIGNAL);
	assert_true(devtest_exit_signalled(f.vm));
	assert_int_equal(devtest_in8(f.vm, LSR) & 0x01, 0);
	fx_close(&f);

	/* Without a terminal, Ctrl-A is just a byte. */
	fx_open(&f, true, false);
	assert_int_equal(write(f.in[1], "\x01x", 2), 2);
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, RBR), 0x01);
	devtest_pump(f.vm, 100);
	assert_int_equal(devtest_in8(f.vm, RBR), 'x');
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	fx_close(&f);
}

static void save_restore(void **state)
{
	(void)state;
	struct fx a, b;
	fx_open(&a, false, false);
	devtest_out8(a.vm, LCR, 0x83);
	devtest_out8(a.vm, COM1_PORT, 0x03);
	devtest_out8(a.vm, LCR, 0x03);
	devtest_out8(a.vm, FCR, 0x81);
	devtest_out8(a.vm, SCR, 0x5a);
	devtest_out8(a.vm, MCR, 0x1b);
	devtest_out8(a.vm, THR, 'p');
	devtest_out8(a.vm, THR, 'q');
	devtest_out8(a.vm, IER, 0x01);
	struct serial_state st;
	serial_save(a.s, &st);
	assert_int_equal(st.irq_level, 1);

	fx_open(&b, false, false);
	assert_int_equal(serial_restore(b.s, &st), 0);
	struct serial_state st2;
	serial_save(b.s, &st2);
	assert_memory_equal(&st, &st2, sizeof(st));
	assert_int_equal(devtest_in8(b.vm, SCR), 0x5a);
	assert_int_equal(devtest_in8(b.vm, IIR), 0xcc);
	assert_int_equal(devtest_in8(b.vm, RBR), 'p');
	assert_int_equal(devtest_in8(b.vm, RBR), 'q');
	assert_int_equal(irq(&b), 0);

	/* Inconsistent states are refused and change nothing. */
	struct serial_state bad = st;
	bad.rx_count = SERIAL_FIFO_SIZE + 1;
	assert_int_equal(serial_restore(b.s, &bad), -1);
	bad = st;
	bad.rx_head = SERIAL_FIFO_SIZE;
	assert_int_equal(serial_restore(b.s, &bad), -1);
	bad = st;
	bad.fcr = 0;
	bad.rx_count = 2; /* 16450 mode holds one byte */
	assert_int_equal(serial_restore(b.s, &bad), -1);
	assert_int_equal(devtest_in8(b.vm, SCR), 0x5a);
	fx_close(&a);
	fx_close(&b);
}

/* Every value to every register at every size: no crash, no hang, and the
 * device still works afterwards. Output goes to /dev/null. */
static void garbage_accesses(void **state)
{
	(void)state;
	struct vm *vm = devtest_vm_new();
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct console *con = console_open_fds(null, -1, false);
	struct serial *s = serial_create(vm, con);
	assert_non_null(s);
	uint8_t data[8];
	for (unsigned len = 1; len <= 8; len++) {
		for (unsigned off = 0; off < 8; off++) {
			for (unsigned v = 0; v < 256; v++) {
				memset(data, (int)v, sizeof(data));
				bool in_range = off + len <= 8;
				assert_int_equal(
				    bus_access(&vm->pio, COM1_PORT + off, data, len, true),
				    in_range);
				assert_int_equal(
				    bus_access(&vm->pio, COM1_PORT + off, data, len, false),
				    in_range);
			}
		}
	}
	/* Back to a sane configuration; the device still behaves. */
	devtest_out8(vm, LCR, 0x03);
	devtest_out8(vm, MCR, 0x10);
	devtest_out8(vm, FCR, 0x07);
	devtest_out8(vm, IER, 0x00);
	devtest_in8(vm, LSR);
	devtest_out8(vm, THR, 'k');
	assert_int_equal(devtest_in8(vm, RBR), 'k');
	assert_int_equal(devtest_in8(vm, LSR), 0x60);
	serial_destroy(s);
	console_close(con);
	close(null);
	devtest_vm_free(vm);
}

/* A slow reader on a small non-blocking pipe: the device must retry
 * EAGAIN and partial writes until everything is out, in order. */
enum { SLOW_TOTAL = 64 * 1024 };

struct slow_reader {
	int fd;
	char buf[SLOW_TOTAL];
	size_t n;
};

static void *slow_reader_main(void *p)
{
	struct slow_reader *r = p;
	struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
	while (r->n < SLOW_TOTAL) {
		usleep(200);
		if (poll(&pfd, 1, 5000) != 1)
			break;
		ssize_t k = read(r->fd, r->buf + r->n, SLOW_TOTAL - r->n);
		if (k > 0)
			r->n += (size_t)k;
	}
	return NULL;
}

static void output_partial_writes(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f, false, false);
	assert_true(fcntl(f.out[1], F_SETPIPE_SZ, 4096) >= 0);
	static struct slow_reader r;
	r.fd = f.out[0];
	r.n = 0;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, slow_reader_main, &r), 0);
	for (int i = 0; i < SLOW_TOTAL; i++)
		devtest_out8(f.vm, THR, (uint8_t)('a' + i % 26));
	pthread_join(t, NULL);
	assert_int_equal(r.n, SLOW_TOTAL);
	for (int i = 0; i < SLOW_TOTAL; i++)
		assert_int_equal(r.buf[i], 'a' + i % 26);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(reset_values),
	    cmocka_unit_test(register_masks),
	    cmocka_unit_test(dlab_divisor),
	    cmocka_unit_test(transmit),
	    cmocka_unit_test(thre_interrupt),
	    cmocka_unit_test(loopback),
	    cmocka_unit_test(fifo_and_overrun),
	    cmocka_unit_test(trigger_level),
	    cmocka_unit_test(iir_priority),
	    cmocka_unit_test(input_backpressure),
	    cmocka_unit_test(input_paused_in_loopback),
	    cmocka_unit_test(input_from_regular_file),
	    cmocka_unit_test(refill_updates_irq),
	    cmocka_unit_test(fifo_reset_keeps_host_input),
	    cmocka_unit_test(escape_sequences),
	    cmocka_unit_test(save_restore),
	    cmocka_unit_test(garbage_accesses),
	    cmocka_unit_test(output_partial_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
