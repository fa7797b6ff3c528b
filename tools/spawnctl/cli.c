#include "tools/spawnctl/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int64_t spc_cli_unary_timeout(const struct spc_ctx *ctx)
{
	return ctx->timeout_set ? ctx->timeout_ns : SPC_DEFAULT_TIMEOUT_NS;
}

int64_t spc_cli_wait_timeout(const struct spc_ctx *ctx)
{
	return ctx->timeout_set ? ctx->timeout_ns : 0;
}

int spc_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("spawnctl: ", stderr);
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'spawnctl %s%s--help'.\n", cmd ? cmd : "",
		cmd ? " " : "");
	return SPC_EXIT_USAGE;
}

int spc_cli_help(const struct spc_command *cmd)
{
	fputs(cmd->usage, stdout);
	return SPC_EXIT_OK;
}

int spc_cli_rpc_error(const struct spc_status *st)
{
	fprintf(stderr, "spawnctl: %s: %s\n", spc_client_code_name(st->code),
		st->details != NULL ? st->details : "");
	return SPC_EXIT_RPC;
}

int spc_cli_local_error(const char *what, int err)
{
	fprintf(stderr, "spawnctl: %s: %s\n", what, strerror(-err));
	return SPC_EXIT_RPC;
}

int spc_cli_is_option(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

int spc_cli_opt_value(int argc, char **argv, int *i, const char *cmd,
		      const char *name, const char **val)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*val = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		spc_cli_usage_error(cmd, "%s needs a value", name);
		return -EINVAL;
	}
	(*i)++;
	*val = argv[*i];
	return 1;
}

void spc_cli_list_release(struct spc_cli_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Appends WORD; LIST has room for ARGC words once allocated. */
static int spc__list_add(struct spc_cli_list *l, int argc, char *word)
{
	if (l->v == NULL) {
		l->v = calloc((size_t)argc, sizeof *l->v);
		if (l->v == NULL)
			return -ENOMEM;
	}
	l->v[l->n++] = word;
	return 0;
}

int spc_cli_parse(const struct spc_command *cmd, const struct spc_opt *opts,
		  int argc, char **argv, int positional_ends_options,
		  struct spc_cli_list *pos)
{
	int options = 1;
	int i;

	for (i = 0; i < argc; i++) {
		char *arg = argv[i];
		const struct spc_opt *o;
		const char *val = NULL;
		int r = 0;

		if (options && strcmp(arg, "--") == 0) {
			options = 0;
			continue;
		}
		if (!options || !spc_cli_is_option(arg)) {
			if (spc__list_add(pos, argc, arg) < 0)
				return spc_cli_local_error(cmd->name, -ENOMEM);
			if (options && positional_ends_options) {
				options = 0;
				if (i + 1 < argc && strcmp(argv[i + 1], "--") == 0)
					i++;
			}
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
			return spc_cli_help(cmd);
		for (o = opts; o->name != NULL; o++) {
			if (o->kind == SPC_OPT_FLAG) {
				r = strcmp(arg, o->name) == 0;
			} else {
				r = spc_cli_opt_value(argc, argv, &i, cmd->name,
						      o->name, &val);
			}
			if (r != 0)
				break;
		}
		if (r < 0)
			return SPC_EXIT_USAGE;
		if (o->name == NULL)
			return spc_cli_usage_error(cmd->name, "unknown option '%s'",
						   arg);
		switch (o->kind) {
		case SPC_OPT_FLAG:
			*(int *)o->dest = 1;
			break;
		case SPC_OPT_VALUE:
			*(const char **)o->dest = val;
			break;
		case SPC_OPT_LIST:
			if (spc__list_add(o->dest, argc, (char *)val) < 0)
				return spc_cli_local_error(cmd->name, -ENOMEM);
			break;
		}
	}
	return SPC_CLI_CONTINUE;
}

/* ---------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------- */

static const struct {
	const char *suffix;
	int64_t ns;
} spc__units[] = {
	/* longest suffixes first: "ms" before "m" and "s" */
	{ "ns", 1 },
	{ "us", 1000 },
	{ "ms", 1000000 },
	{ "s", 1000000000 },
	{ "m", 60LL * 1000000000 },
	{ "h", 3600LL * 1000000000 },
};

int spc_cli_parse_duration(const char *s, int64_t *ns)
{
	int64_t total = 0;

	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (*s == '\0')
		return -EINVAL;
	while (*s != '\0') {
		int64_t whole = 0, frac = 0, frac_scale = 1, unit = 0, part;
		int digits = 0;
		size_t u;

		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			if (whole > (INT64_MAX - 9) / 10)
				return -EINVAL;
			whole = whole * 10 + (*s - '0');
		}
		if (*s == '.') {
			for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
				/* digits past nanoseconds cannot matter */
				if (frac_scale < 1000000000) {
					frac = frac * 10 + (*s - '0');
					frac_scale *= 10;
				}
			}
		}
		if (digits == 0)
			return -EINVAL;
		for (u = 0; u < sizeof spc__units / sizeof spc__units[0]; u++) {
			size_t n = strlen(spc__units[u].suffix);

			if (strncmp(s, spc__units[u].suffix, n) == 0 &&
			    !(n == 1 && s[0] == 'm' && s[1] == 's')) {
				unit = spc__units[u].ns;
				s += n;
				break;
			}
		}
		if (unit == 0)
			return -EINVAL;
		if (whole > INT64_MAX / unit)
			return -EINVAL;
		part = whole * unit +
		       (int64_t)((long double)frac * unit / frac_scale);
		if (part > INT64_MAX - total)
			return -EINVAL;
		total += part;
	}
	*ns = total;
	return 0;
}

int spc_cli_duration_opt(const char *cmd, const char *option, const char *s,
			 int64_t *ns)
{
	if (spc_cli_parse_duration(s, ns) == 0)
		return 0;
	spc_cli_usage_error(cmd,
			    "%s: bad duration '%s' (examples: 300ms, 2s, 1.5s, 1m30s)",
			    option, s);
	return -EINVAL;
}

void spc_cli_duration_to_proto(int64_t ns, Google__Protobuf__Duration *d)
{
	d->seconds = ns / 1000000000;
	d->nanos = (int32_t)(ns % 1000000000);
}

int spc_cli_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* The field of ENTRY named NAME, which must be a string. */
static const ProtobufCFieldDescriptor *
spc__string_field(const ProtobufCMessageDescriptor *entry, const char *name)
{
	const ProtobufCFieldDescriptor *fd =
		protobuf_c_message_descriptor_get_field_by_name(entry, name);

	return fd != NULL && fd->type == PROTOBUF_C_TYPE_STRING ? fd : NULL;
}

int spc_cli_labels(const char *cmd, const char *option, char *const *words,
		   size_t n, const ProtobufCMessageDescriptor *entry,
		   ProtobufCMessage ***out)
{
	const ProtobufCFieldDescriptor *kf = spc__string_field(entry, "key");
	const ProtobufCFieldDescriptor *vf = spc__string_field(entry, "value");
	ProtobufCMessage **v = NULL;
	size_t built = 0;
	int err = 0;

	*out = NULL;
	if (kf == NULL || vf == NULL)
		return -EINVAL;
	v = calloc(n ? n : 1, sizeof *v);
	if (v == NULL)
		return -ENOMEM;
	for (built = 0; built < n; built++) {
		const char *eq = strchr(words[built], '=');
		ProtobufCMessage *e;

		if (eq == NULL || eq == words[built]) {
			spc_cli_usage_error(cmd, "%s: expected KEY=VALUE, got '%s'",
					    option, words[built]);
			err = -EINVAL;
			goto out;
		}
		e = malloc(entry->sizeof_message);
		if (e == NULL) {
			err = -ENOMEM;
			goto out;
		}
		protobuf_c_message_init(entry, e);
		v[built] = e;
		/* Heap strings, so that protobuf_c_message_free_unpacked frees
		 * the entry and both of them. */
		*(char **)((char *)e + kf->offset) =
			strndup(words[built], (size_t)(eq - words[built]));
		*(char **)((char *)e + vf->offset) = strdup(eq + 1);
		if (*(char **)((char *)e + kf->offset) == NULL ||
		    *(char **)((char *)e + vf->offset) == NULL) {
			built++;
			err = -ENOMEM;
			goto out;
		}
	}
	*out = v;
	v = NULL;
out:
	if (v != NULL)
		spc_cli_labels_free(v, built);
	return err;
}

void spc_cli_labels_free(ProtobufCMessage **entries, size_t n)
{
	size_t i;

	if (entries == NULL)
		return;
	for (i = 0; i < n; i++)
		if (entries[i] != NULL)
			protobuf_c_message_free_unpacked(entries[i], NULL);
	free(entries);
}

int spc_cli_read_input(const char *path, uint8_t **data, size_t *len)
{
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	int fd = -1;
	int err = 0;

	*data = NULL;
	*len = 0;
	if (strcmp(path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			goto out;
		}
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64 * 1024;
			uint8_t *nb;

			if (cap >= SPC_INPUT_MAX + 1) {
				err = -EFBIG;
				goto out;
			}
			if (ncap > SPC_INPUT_MAX + 1)
				ncap = SPC_INPUT_MAX + 1;
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > SPC_INPUT_MAX) {
			err = -EFBIG;
			goto out;
		}
	}
	*data = buf;
	*len = n;
	buf = NULL;
out:
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	free(buf);
	return err;
}
