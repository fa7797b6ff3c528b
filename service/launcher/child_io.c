/* A child's output and result/error channel, as the launcher drains them:
 * stdout/stderr chunks are forwarded to the front as they come (OUTPUT) and
 * kept as head and tail; channel records build the result and the raised
 * error; the EXITED report carries what was kept. See launcher_impl.h. It
 * changes a child's buffers and report, never its state: a pipe's EOF is for
 * the caller to give to the child table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/common/log.h"
#include "service/common/tail.h"
#include "service/launcher/launcher_impl.h"
#include "service/target/channel.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

/* Bytes read from one pipe per wakeup, so one chatty child cannot starve the
 * others or the socket. */
#define READ_BUDGET (256u * 1024u)

void spd__set_launch_error(spd__child *c, const char *stage, int err, const char *msg)
{
	free(c->rep.launch_stage);
	free(c->rep.launch_message);
	c->rep.launch_stage = strdup(stage);
	c->rep.launch_errno = err;
	c->rep.launch_message = strdup(msg != NULL ? msg : strerror(err));
}

/* ---- child output and channel ---------------------------------------------- */

static void handle_record(spd__child *c, uint8_t type, const uint8_t *p, size_t n)
{
	uint64_t max = c->target->cfg->limits.max_result_bytes;

	switch (type) {
	case SPD_CHAN_RESULT:
		if (c->rep.flags & SPD_EXIT_TOO_LARGE)
			break;
		if (max != 0 && c->result_len + n > max) {
			c->rep.flags |= SPD_EXIT_TOO_LARGE;
			free(c->result);
			c->result = NULL;
			c->result_len = c->result_cap = 0;
			break;
		}
		if (spd__append(&c->result, &c->result_len, &c->result_cap, p, n) < 0)
			c->rep.flags |= SPD_EXIT_TOO_LARGE;
		break;
	case SPD_CHAN_RAISE:
		if (!(c->rep.flags & (SPD_EXIT_RAISED | SPD_EXIT_OOM))) {
			/* type NUL message NUL backtrace NUL. A field may lack its NUL
			 * (the child writes fd 3 as it likes): each is cut at the
			 * record's end, never read past it. */
			const char *f[3] = {"", "", ""};
			size_t flen[3] = {0, 0, 0};
			size_t off = 0;
			for (int i = 0; i < 3 && off < n; i++) {
				f[i] = (const char *)p + off;
				flen[i] = strnlen(f[i], n - off);
				off += flen[i] + 1;
			}
			c->rep.flags |= SPD_EXIT_RAISED;
			if (flen[0] > SPD_RAISE_TYPE_MAX)
				flen[0] = SPD_RAISE_TYPE_MAX;
			if (flen[1] > SPD_RAISE_MESSAGE_MAX)
				flen[1] = SPD_RAISE_MESSAGE_MAX;
			if (flen[2] > SPD_RAISE_BACKTRACE_MAX)
				flen[2] = SPD_RAISE_BACKTRACE_MAX;
			c->rep.raise_type = strndup(f[0], flen[0]);
			c->rep.raise_message = strndup(f[1], flen[1]);
			c->rep.raise_backtrace = strndup(f[2], flen[2]);
		}
		break;
	case SPD_CHAN_OOM:
		if (!(c->rep.flags & SPD_EXIT_RAISED))
			c->rep.flags |= SPD_EXIT_OOM;
		break;
	case SPD_CHAN_TOO_LARGE:
		c->rep.flags |= SPD_EXIT_TOO_LARGE;
		break;
	case SPD_CHAN_SETUP_FAILED: {
		char stage[64] = "setup", msg[256] = "";
		size_t a = strnlen((const char *)p, n);
		snprintf(stage, sizeof stage, "%.*s", (int)a, (const char *)p);
		if (a + 1 < n)
			snprintf(msg, sizeof msg, "%.*s", (int)strnlen((const char *)p + a + 1, n - a - 1),
				 (const char *)p + a + 1);
		c->rep.flags |= SPD_EXIT_SETUP_FAILED;
		spd__set_launch_error(c, stage, 0, msg);
		break;
	}
	default:
		break; /* unknown records are ignored: the channel is ours */
	}
}

static void parse_channel(spd__launcher *l, spd__child *c)
{
	size_t off = 0;

	while (c->chan_len - off >= SPD_CHANNEL_HDR_LEN) {
		uint32_t n;
		memcpy(&n, c->chan + off + 1, sizeof n);
		if (n > SPD_CHANNEL_MAX_RECORD) {
			/* Not something call.c writes: stop listening to this child. */
			spd__loop_close(l, &c->fd_chan);
			off = c->chan_len;
			break;
		}
		if (c->chan_len - off < SPD_CHANNEL_HDR_LEN + n)
			break;
		handle_record(c, c->chan[off], c->chan + off + SPD_CHANNEL_HDR_LEN, n);
		off += SPD_CHANNEL_HDR_LEN + n;
	}
	memmove(c->chan, c->chan + off, c->chan_len - off);
	c->chan_len -= off;
}

/* Forwards a chunk of the child's stdout (1) or stderr (2) to the front, which
 * numbers it and streams it to watchers. OFFSET is the stream's byte count
 * before the chunk. */
static void send_output(spd__launcher *l, spd__child *c, int stream, uint64_t offset, const void *data,
			size_t len)
{
	spd_output_msg m = {.stream = (uint32_t)stream, .offset = offset, .data = data, .len = len};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_output_msg_encode(&m, &b);
	spd__send(l, SPD_WIRE_OUTPUT, c->key, &b);
}

/* Keeps the first max_output_bytes / 2 of stream I (0 stdout, 1 stderr): the
 * head reported when the whole output did not fit. */
static void keep_head(spd__child *c, int i, const uint8_t *p, size_t n)
{
	size_t cap = c->target->cfg->limits.max_output_bytes / 2;

	if (c->head_len[i] >= cap)
		return;
	if (c->head[i] == NULL && (c->head[i] = malloc(cap)) == NULL)
		return;
	if (n > cap - c->head_len[i])
		n = cap - c->head_len[i];
	memcpy(c->head[i] + c->head_len[i], p, n);
	c->head_len[i] += n;
}

/* Drains one pipe (up to the budget). */
void spd__drain(spd__launcher *l, spd__child *c, int *fd)
{
	uint8_t buf[SPD_WIRE_OUTPUT_CHUNK];
	size_t budget = READ_BUDGET;

	while (*fd >= 0 && budget > 0) {
		ssize_t n = read(*fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				spd__loop_close(l, fd);
			return;
		}
		if (n == 0) {
			spd__loop_close(l, fd);
			return;
		}
		budget -= (size_t)n < budget ? (size_t)n : budget;
		if (fd == &c->fd_out || fd == &c->fd_err) {
			int i = fd == &c->fd_out ? 0 : 1;
			spd_tail *t = i == 0 ? &c->out : &c->err;
			send_output(l, c, i + 1, t->total, buf, (size_t)n);
			keep_head(c, i, buf, (size_t)n);
			spd_tail_write(t, buf, (size_t)n);
		} else if (spd__append(&c->chan, &c->chan_len, &c->chan_cap, buf, (size_t)n) == 0)
			parse_channel(l, c);
	}
}

/* Fills the report's kept output of one stream: everything when it fit in
 * max_output_bytes, else the head and the last (max - head) bytes. Returns the
 * tail buffer (the caller frees it after sending). */
static uint8_t *kept_output(const spd__child *c, int i, uint8_t **tail, size_t *tail_len,
			    uint8_t **head, size_t *head_len)
{
	const spd_tail *t = i == 0 ? &c->out : &c->err;
	size_t max = c->target != NULL ? c->target->cfg->limits.max_output_bytes : 0;
	size_t want = t->total <= max ? t->len : max - c->head_len[i];
	uint8_t *buf = malloc(want ? want : 1);

	*head = NULL;
	*head_len = 0;
	*tail_len = buf != NULL ? spd_tail_copy(t, buf, want) : 0;
	*tail = buf;
	if (t->total > max) {
		*head = c->head[i];
		*head_len = c->head_len[i];
	}
	return buf;
}

void spd__send_exited(spd__launcher *l, spd__child *c)
{
	spd_wbuf b = SPD_WBUF_INIT;
	uint8_t *outbuf, *errbuf;

	c->rep.pid = c->pid;
	c->rep.result = c->result;
	c->rep.result_len = c->result_len;
	c->rep.stdout_total = (int64_t)c->out.total;
	c->rep.stderr_total = (int64_t)c->err.total;
	outbuf = kept_output(c, 0, &c->rep.stdout_tail, &c->rep.stdout_len, &c->rep.stdout_head,
			     &c->rep.stdout_head_len);
	errbuf = kept_output(c, 1, &c->rep.stderr_tail, &c->rep.stderr_len, &c->rep.stderr_head,
			     &c->rep.stderr_head_len);
	spd_exit_report_encode(&c->rep, &b);
	spd__send(l, SPD_WIRE_EXITED, c->key, &b);
	/* The report borrowed these; spd__child_free() releases the rest. */
	c->rep.result = NULL;
	c->rep.stdout_tail = c->rep.stderr_tail = NULL;
	c->rep.stdout_head = c->rep.stderr_head = NULL;
	free(outbuf);
	free(errbuf);
	spd_wbuf_release(&b);
}

