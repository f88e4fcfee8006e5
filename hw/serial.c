/*
 * COM1: a 16550A UART, as the guest sees it on ports 0x3f8-0x3ff, IRQ 4.
 *
 * Register map and behaviour follow the 16550A datasheet. Transmission is
 * instantaneous: a byte written to THR goes to the console at once, so THR
 * and the transmitter always read as empty. Reception has a 16-byte FIFO
 * (one byte in 16450 mode); host input is read from the console only while
 * there is room for it, so a guest that stops reading applies
 * back-pressure all the way to the producer and no byte is dropped.
 *
 * Threads: register accesses come from vCPU threads, input readiness from
 * the main loop. `lock` guards the device; `out_lock` serialises writes to
 * the output fd and is always taken before `lock`, so a blocked stdout
 * stalls only the vCPUs that write to it, never the main loop.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../log.h"
#include "devices.h"

/* Register offsets. */
#define UART_RBR 0 /* read, DLAB=0 */
#define UART_THR 0 /* write, DLAB=0 */
#define UART_DLL 0 /* DLAB=1 */
#define UART_IER 1 /* DLAB=0 */
#define UART_DLM 1 /* DLAB=1 */
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK 0x0f

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c
#define IIR_FIFO 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_DMA 0x08
#define FCR_TRIGGER 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

#define CTRL_A 0x01
#define OUT_RING 4096

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	pthread_mutex_t out_lock;
	struct serial_state st;

	/* Output: bytes queue here under `lock`; serial_flush() drains them in
	 * order under `out_lock`. */
	int out_fd;
	uint8_t out_ring[OUT_RING];
	size_t out_head, out_len;
	bool out_broken;

	/* Input (host side; not guest-visible). */
	int in_fd;
	bool in_tty;	    /* interpret the Ctrl-A escape */
	bool in_pollable;   /* on the loop; otherwise read directly when room */
	bool in_registered; /* in_fd is on vm->loop */
	bool in_armed;	    /* a one-shot EPOLLIN is armed or being handled */
	bool in_eof;	    /* EOF or error: never read again */
	bool esc;	    /* a Ctrl-A was just typed */
	/* Host bytes the guest threw away unread with a FIFO reset, to be
	 * received again before anything new: the guest's driver resets the
	 * FIFO when it starts, typed-ahead or piped input must survive it. */
	bool rx_host[SERIAL_FIFO_SIZE]; /* per FIFO slot: byte came from the host */
	uint8_t pushback[SERIAL_FIFO_SIZE];
	unsigned pb_len;

	struct ratelimit irq_rl, out_rl;
};

/* ---- Pure register model (called with lock held) ---- */

static unsigned rx_capacity(const struct serial_state *st)
{
	return (st->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct serial_state *st)
{
	static const uint8_t levels[4] = {1, 4, 8, 14};
	return levels[st->fcr >> 6];
}

/* Empty the receiver. Host bytes in it go back to the pushback buffer,
 * ahead of what is already there (they are older). */
static void rx_clear(struct serial *s)
{
	struct serial_state *st = &s->st;
	uint8_t keep[SERIAL_FIFO_SIZE];
	unsigned n = 0;
	for (unsigned i = 0; i < st->rx_count; i++) {
		unsigned slot = (st->rx_head + i) % SERIAL_FIFO_SIZE;
		if (s->rx_host[slot])
			keep[n++] = st->rx_fifo[slot];
	}
	if (n + s->pb_len > SERIAL_FIFO_SIZE) /* cannot happen: see input_read() */
		n = SERIAL_FIFO_SIZE - s->pb_len;
	memmove(s->pushback + n, s->pushback, s->pb_len);
	memcpy(s->pushback, keep, n);
	s->pb_len += n;
	st->rx_head = 0;
	st->rx_count = 0;
}

/* Append a received byte; on a full receiver it is an overrun: the FIFO
 * keeps its contents, the 16450 holding register is overwritten. */
static void rx_receive(struct serial *s, uint8_t byte, bool from_host)
{
	struct serial_state *st = &s->st;
	unsigned cap = rx_capacity(st);
	unsigned slot;
	if (st->rx_count < cap) {
		slot = (st->rx_head + st->rx_count) % SERIAL_FIFO_SIZE;
		st->rx_count++;
	} else {
		st->lsr_err |= LSR_OE;
		if (st->fcr & FCR_ENABLE)
			return;
		slot = st->rx_head;
	}
	st->rx_fifo[slot] = byte;
	s->rx_host[slot] = from_host;
}

static uint8_t compute_iir(const struct serial_state *st)
{
	uint8_t fifo = (st->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
	if ((st->ier & IER_ELSI) && (st->lsr_err & LSR_ERRORS))
		return fifo | IIR_RLSI;
	if ((st->ier & IER_ERBFI) && st->rx_count) {
		/* Below the trigger level the real chip reports a character
		 * timeout after four character times; we report it at once. */
		if ((st->fcr & FCR_ENABLE) && st->rx_count < rx_trigger(st))
			return fifo | IIR_CTI;
		return fifo | IIR_RDI;
	}
	if ((st->ier & IER_ETBEI) && st->thr_ipending)
		return fifo | IIR_THRI;
	if ((st->ier & IER_EDSSI) && (st->msr & MSR_DELTAS))
		return fifo | IIR_MSI;
	return fifo | IIR_NO_INT;
}

static uint8_t compute_lsr(const struct serial_state *st)
{
	uint8_t lsr = LSR_THRE | LSR_TEMT | (st->lsr_err & LSR_ERRORS);
	if (st->rx_count)
		lsr |= LSR_DR;
	return lsr;
}

/* Modem inputs: a connected line normally; in loopback the outputs. */
static uint8_t modem_inputs(uint8_t mcr)
{
	if (!(mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	uint8_t in = 0;
	if (mcr & MCR_RTS)
		in |= MSR_CTS;
	if (mcr & MCR_DTR)
		in |= MSR_DSR;
	if (mcr & MCR_OUT1)
		in |= MSR_RI;
	if (mcr & MCR_OUT2)
		in |= MSR_DCD;
	return in;
}

static void set_modem_inputs(struct serial_state *st, uint8_t in)
{
	uint8_t old = st->msr & 0xf0;
	uint8_t changed = old ^ in;
	uint8_t delta = st->msr & MSR_DELTAS;
	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	if ((old & MSR_RI) && !(in & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	st->msr = in | delta;
}

static void state_reset(struct serial_state *st)
{
	memset(st, 0, sizeof(*st));
	st->msr = modem_inputs(0);
	st->dll = 0x0c; /* 9600 baud, a common firmware default */
}

/* ---- Side effects (lock held) ---- */

static void update_irq(struct serial *s)
{
	uint8_t level = !(compute_iir(&s->st) & IIR_NO_INT);
	if (level == s->st.irq_level)
		return;
	s->st.irq_level = level;
	int rc = vm_irq_line(s->vm, COM1_IRQ, level);
	if (rc < 0 && s->vm->vm_fd >= 0)
		vmm_warn_ratelimited(&s->irq_rl, "serial: KVM_IRQ_LINE %u: %s", COM1_IRQ,
				     strerror(-rc));
}

static bool want_input(const struct serial *s)
{
	return (s->pb_len || (s->in_fd >= 0 && !s->in_eof)) && !(s->st.mcr & MCR_LOOP) &&
	       s->st.rx_count < rx_capacity(&s->st);
}

static void input_stop(struct serial *s)
{
	s->in_eof = true;
	if (s->in_registered) {
		loop_del(&s->vm->loop, s->in_fd);
		s->in_registered = false;
	}
	s->in_armed = false;
}

/*
 * Receive as much input as the receiver has room for, never more: first
 * the pushback buffer, then (only once it is empty, so host bytes in the
 * FIFO plus pushback never exceed SERIAL_FIFO_SIZE) the input fd.
 */
static void input_read(struct serial *s)
{
	unsigned room = rx_capacity(&s->st) - s->st.rx_count;
	if (s->pb_len) {
		unsigned n = room < s->pb_len ? room : s->pb_len;
		for (unsigned i = 0; i < n; i++)
			rx_receive(s, s->pushback[i], true);
		s->pb_len -= n;
		memmove(s->pushback, s->pushback + n, s->pb_len);
		return;
	}
	if (s->in_fd < 0 || s->in_eof)
		return;
	uint8_t buf[SERIAL_FIFO_SIZE];
	ssize_t n = read(s->in_fd, buf, room);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		input_stop(s); /* EOF, hang-up or error: stop reading, quietly */
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (s->in_tty) {
			if (s->esc) {
				s->esc = false;
				if (c == 'x' || c == 'X') {
					vm_request_exit(s->vm, VMM_EXIT_SIGNAL);
					continue;
				}
				if (c != CTRL_A)
					continue; /* unknown escape: dropped */
			} else if (c == CTRL_A) {
				s->esc = true;
				continue;
			}
		}
		rx_receive(s, c, true); /* at most `room` bytes: always fits */
	}
}

/* Make sure input flows whenever there is room for it. */
static void input_update(struct serial *s)
{
	if (!want_input(s))
		return;
	if (s->pb_len) {
		input_read(s);
		if (!want_input(s))
			return;
	}
	if (s->in_fd < 0 || s->in_eof)
		return;
	if (!s->in_pollable) {
		input_read(s); /* regular file or /dev/null: never blocks */
		return;
	}
	if (!s->in_armed && loop_mod(&s->vm->loop, s->in_fd, EPOLLIN | EPOLLONESHOT) == 0)
		s->in_armed = true;
}

/* Main loop: the one-shot registration fired, so it is disarmed now. */
static void on_input(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	(void)events;
	pthread_mutex_lock(&s->lock);
	s->in_armed = false;
	if (want_input(s))
		input_read(s);
	input_update(s); /* re-arm if there is still room */
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void write_out(struct serial *s, const uint8_t *p, size_t len)
{
	while (len && !s->out_broken) {
		ssize_t w = write(s->out_fd, p, len);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Interrupted because the VM is stopping: give up. */
			if (atomic_load(&s->vm->exit_status) != -1)
				return;
			if (errno != EINTR) {
				struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};
				poll(&pfd, 1, 100);
			}
			continue;
		}
		vmm_warn_ratelimited(&s->out_rl,
				     "serial: console output failed: %s; output dropped",
				     w < 0 ? strerror(errno) : "short write");
		s->out_broken = true;
	}
}

/* Write out everything queued, in order. Called without `lock`. */
static void serial_flush(struct serial *s)
{
	pthread_mutex_lock(&s->out_lock);
	for (;;) {
		uint8_t buf[512];
		size_t n = 0;
		pthread_mutex_lock(&s->lock);
		while (n < sizeof(buf) && s->out_len) {
			size_t chunk = OUT_RING - s->out_head;
			if (chunk > s->out_len)
				chunk = s->out_len;
			if (chunk > sizeof(buf) - n)
				chunk = sizeof(buf) - n;
			memcpy(buf + n, s->out_ring + s->out_head, chunk);
			n += chunk;
			s->out_head = (s->out_head + chunk) % OUT_RING;
			s->out_len -= chunk;
		}
		pthread_mutex_unlock(&s->lock);
		if (!n)
			break;
		write_out(s, buf, n);
	}
	pthread_mutex_unlock(&s->out_lock);
}

/* Queue one transmitted byte. Returns true if a flush is needed. If the
 * queue is full, drains it first (dropping `lock` meanwhile). */
static bool tx_byte(struct serial *s, uint8_t byte)
{
	if (s->out_fd < 0 || s->out_broken)
		return false;
	while (s->out_len == OUT_RING) {
		pthread_mutex_unlock(&s->lock);
		serial_flush(s);
		pthread_mutex_lock(&s->lock);
		if (s->out_broken)
			return false;
	}
	s->out_ring[(s->out_head + s->out_len) % OUT_RING] = byte;
	s->out_len++;
	return true;
}

static uint8_t reg_read(struct serial *s, unsigned reg)
{
	struct serial_state *st = &s->st;
	switch (reg) {
	case UART_RBR:
		if (st->lcr & LCR_DLAB)
			return st->dll;
		if (st->rx_count) {
			st->rbr = st->rx_fifo[st->rx_head];
			st->rx_head = (st->rx_head + 1) % SERIAL_FIFO_SIZE;
			st->rx_count--;
		}
		return st->rbr; /* an empty receiver repeats the last byte */
	case UART_IER:
		return (st->lcr & LCR_DLAB) ? st->dlm : st->ier;
	case UART_IIR: {
		uint8_t iir = compute_iir(st);
		/* Reading IIR while THRE is the reported source clears it. */
		if ((iir & 0x0f) == IIR_THRI)
			st->thr_ipending = 0;
		return iir;
	}
	case UART_LCR:
		return st->lcr;
	case UART_MCR:
		return st->mcr;
	case UART_LSR: {
		uint8_t lsr = compute_lsr(st);
		st->lsr_err = 0; /* errors clear on read */
		return lsr;
	}
	case UART_MSR: {
		uint8_t msr = st->msr;
		st->msr &= ~MSR_DELTAS;
		return msr;
	}
	case UART_SCR:
		return st->scr;
	}
	return 0xff;
}

/* Returns true if output was queued. */
static bool reg_write(struct serial *s, unsigned reg, uint8_t val)
{
	struct serial_state *st = &s->st;
	bool queued = false;
	switch (reg) {
	case UART_THR:
		if (st->lcr & LCR_DLAB) {
			st->dll = val;
			break;
		}
		if (st->mcr & MCR_LOOP)
			rx_receive(s, val, false);
		else
			queued = tx_byte(s, val);
		/* Sent at once: THR is empty again, which re-raises THRE. */
		st->thr_ipending = 1;
		break;
	case UART_IER:
		if (st->lcr & LCR_DLAB) {
			st->dlm = val;
			break;
		}
		/* Enabling ETBEI while THR is empty (always) raises THRE. */
		if (!(st->ier & IER_ETBEI) && (val & IER_ETBEI))
			st->thr_ipending = 1;
		st->ier = val & IER_MASK;
		break;
	case UART_FCR:
		if (!(val & FCR_ENABLE)) {
			/* Leaving FIFO mode clears the FIFOs; the other bits are
			 * only programmed together with FCR0 = 1. */
			if (st->fcr & FCR_ENABLE)
				rx_clear(s);
			st->fcr = 0;
			break;
		}
		if (!(st->fcr & FCR_ENABLE) || (val & FCR_CLEAR_RX))
			rx_clear(s);
		/* FCR_CLEAR_TX: nothing is ever waiting to be sent. */
		st->fcr = val & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER);
		break;
	case UART_LCR:
		st->lcr = val;
		break;
	case UART_MCR:
		st->mcr = val & MCR_MASK;
		set_modem_inputs(st, modem_inputs(st->mcr));
		break;
	case UART_LSR: /* factory test register on some parts: ignored */
	case UART_MSR:
		break;
	case UART_SCR:
		st->scr = val;
		break;
	}
	return queued;
}

static void serial_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = dev;
	bool flush = false;
	pthread_mutex_lock(&s->lock);
	/* A wider access acts on consecutive registers, one byte each. */
	for (uint32_t i = 0; i < len; i++) {
		uint64_t reg = offset + i;
		if (reg >= 8) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			flush |= reg_write(s, (unsigned)reg, data[i]);
		else
			data[i] = reg_read(s, (unsigned)reg);
	}
	input_update(s); /* may receive more, so before the IRQ update */
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	if (flush)
		serial_flush(s);
}

/* Can `fd` go on an epoll set? Regular files and /dev/null cannot. */
static bool fd_pollable(int fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return false;
	struct epoll_event ev = {.events = EPOLLIN};
	bool ok = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
	close(ep);
	return ok;
}

struct serial *serial_create(struct vm *vm, struct console *c)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s) {
		vmm_err("serial: out of memory");
		return NULL;
	}
	s->vm = vm;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->out_lock, NULL);
	state_reset(&s->st);
	s->out_fd = console_out_fd(c);
	s->in_fd = console_in_fd(c);
	s->in_tty = console_in_is_tty(c);

	if (s->in_fd >= 0) {
		s->in_pollable = fd_pollable(s->in_fd);
		if (s->in_pollable) {
			if (loop_add(&vm->loop, s->in_fd, EPOLLIN | EPOLLONESHOT, on_input, s) < 0)
				goto fail;
			s->in_registered = true;
			s->in_armed = true;
		}
	}
	if (bus_register(&vm->pio, COM1_PORT, 8, serial_io, s, "serial (COM1)") < 0)
		goto fail;
	pthread_mutex_lock(&s->lock);
	input_update(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return s;
fail:
	if (s->in_registered)
		loop_del(&vm->loop, s->in_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->out_lock);
	free(s);
	return NULL;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	if (s->in_registered)
		loop_del(&s->vm->loop, s->in_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->out_lock);
	free(s);
}

void serial_save(const struct serial *cs, struct serial_state *out)
{
	struct serial *s = (struct serial *)cs; /* the lock is not state */
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}

int serial_restore(struct serial *s, const struct serial_state *in)
{
	if (in->rx_head >= SERIAL_FIFO_SIZE || in->rx_count > rx_capacity(in) ||
	    in->irq_level > 1 || (in->ier & ~IER_MASK) || (in->mcr & ~MCR_MASK) ||
	    in->thr_ipending > 1)
		return -1;
	pthread_mutex_lock(&s->lock);
	s->st = *in;
	s->st.fcr &= FCR_ENABLE | FCR_DMA | FCR_TRIGGER;
	s->st.lsr_err &= LSR_ERRORS;
	memset(s->rx_host, 0, sizeof(s->rx_host));
	/* Drive the line to what the restored registers say. */
	input_update(s);
	s->st.irq_level = !(compute_iir(&s->st) & IIR_NO_INT);
	vm_irq_line(s->vm, COM1_IRQ, s->st.irq_level);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
