#include "service/rpc/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/log.h"

/* A PEM file larger than this is not a certificate chain. */
#define PEM_MAX ((size_t)1 << 20)

typedef struct pems {
	char *cert, *key, *ca;  /* NUL-terminated PEM text; ca NULL without client_ca */
} pems;

/* One set of credentials handed to gRPC: what it was last given. */
typedef struct fetcher {
	struct fetcher *next;
	struct spd_tls *tls;
	uint64_t served;        /* generation gRPC has */
} fetcher;

struct spd_tls {
	const char *cert_path, *key_path, *ca_path;  /* borrowed from the config */
	pthread_mutex_t mu;
	pems cur;
	uint64_t gen;           /* bumped by each successful read */
	fetcher *fetchers;      /* freed with T: gRPC gives no callback when done */
};

static void pems_release(pems *p)
{
	free(p->cert);
	if (p->key != NULL)
		memset(p->key, 0, strlen(p->key));
	free(p->key);
	free(p->ca);
	memset(p, 0, sizeof *p);
}

/* PATH's text into *OUT. -errno with ERR naming KEY and PATH. */
static int read_pem(const char *key, const char *path, const char *must, char **out, char *err,
		    size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	int rc = 0;

	*out = NULL;
	if (f == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", key, path, strerror(-rc));
		return rc;
	}
	buf = malloc(PEM_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s %s: out of memory", key, path);
		return -ENOMEM;
	}
	len = fread(buf, 1, PEM_MAX + 1, f);
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "%s %s: read error", key, path);
	} else if (len > PEM_MAX) {
		rc = -EFBIG;
		snprintf(err, errlen, "%s %s: larger than 1 MiB: not a PEM file", key, path);
	} else {
		buf[len] = '\0';
		if (strlen(buf) != len || strstr(buf, must) == NULL) {
			rc = -EINVAL;
			snprintf(err, errlen, "%s %s: not a PEM file with a \"%s\" block", key, path,
				 must);
		}
	}
	fclose(f);
	if (rc < 0) {
		memset(buf, 0, len < PEM_MAX ? len : PEM_MAX);
		free(buf);
		return rc;
	}
	{
		char *fit = realloc(buf, len + 1); /* not 1 MiB per file for life */
		*out = fit != NULL ? fit : buf;
	}
	return 0;
}

static int read_all(const spd_tls *t, pems *p, char *err, size_t errlen)
{
	int rc;

	memset(p, 0, sizeof *p);
	rc = read_pem("tls.cert", t->cert_path, "-----BEGIN CERTIFICATE-----", &p->cert, err, errlen);
	if (rc == 0)
		rc = read_pem("tls.key", t->key_path, "PRIVATE KEY-----", &p->key, err, errlen);
	if (rc == 0 && t->ca_path != NULL)
		rc = read_pem("tls.client_ca", t->ca_path, "-----BEGIN CERTIFICATE-----", &p->ca, err,
			      errlen);
	if (rc < 0)
		pems_release(p);
	return rc;
}

int spd_tls_create(const spd_config *cfg, spd_tls **out, char *err, size_t errlen)
{
	spd_tls *t;
	int rc;

	*out = NULL;
	if (cfg->tls_cert == NULL)
		return 0;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return -ENOMEM;
	t->cert_path = cfg->tls_cert;
	t->key_path = cfg->tls_key;
	t->ca_path = cfg->tls_client_ca;
	rc = read_all(t, &t->cur, err, errlen);
	if (rc < 0) {
		free(t);
		return rc;
	}
	pthread_mutex_init(&t->mu, NULL);
	t->gen = 1;
	*out = t;
	return 0;
}

/* gRPC's question at each handshake: are there newer certificates? */
static grpc_ssl_certificate_config_reload_status fetch(void *user_data,
						       grpc_ssl_server_certificate_config **config)
{
	fetcher *f = user_data;
	spd_tls *t = f->tls;
	grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;

	pthread_mutex_lock(&t->mu);
	if (f->served != t->gen) {
		grpc_ssl_pem_key_cert_pair pair = {.private_key = t->cur.key,
						   .cert_chain = t->cur.cert};
		/* gRPC copies the strings. Its fetcher path asserts that there are
		 * root certificates even when no client certificate is asked for:
		 * then the server's own chain stands in, and is never used. */
		*config = grpc_ssl_server_certificate_config_create(
			t->cur.ca != NULL ? t->cur.ca : t->cur.cert, &pair, 1);
		if (*config != NULL) {
			f->served = t->gen;
			st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
		} else {
			st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return st;
}

grpc_server_credentials *spd_tls_server_credentials(spd_tls *t)
{
	grpc_ssl_server_credentials_options *opts;
	fetcher *f = calloc(1, sizeof *f);

	if (f == NULL)
		return NULL;
	f->tls = t;
	pthread_mutex_lock(&t->mu);
	f->next = t->fetchers;
	t->fetchers = f;
	pthread_mutex_unlock(&t->mu);
	opts = grpc_ssl_server_credentials_create_options_using_config_fetcher(
		t->ca_path != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
				   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		fetch, f);
	if (opts == NULL)
		return NULL;
	return grpc_ssl_server_credentials_create_with_options(opts); /* takes OPTS */
}

int spd_tls_reload(spd_tls *t, char *err, size_t errlen)
{
	pems next;
	int rc = read_all(t, &next, err, errlen);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&t->mu);
	pems_release(&t->cur);
	t->cur = next;
	t->gen++;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

void spd_tls_destroy(spd_tls *t)
{
	if (t == NULL)
		return;
	while (t->fetchers != NULL) {
		fetcher *f = t->fetchers;
		t->fetchers = f->next;
		free(f);
	}
	pems_release(&t->cur);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
