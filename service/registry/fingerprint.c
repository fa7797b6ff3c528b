/* Request fingerprints: see fingerprint.h for the canonical form. */
#include "service/registry/fingerprint.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN_TAG "spawnd.v1.StartProcessRequest/1"

static void put_u64(EVP_MD_CTX *c, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	EVP_DigestUpdate(c, b, sizeof b);
}

static void put_bytes(EVP_MD_CTX *c, const void *data, size_t len)
{
	put_u64(c, len);
	if (len > 0)
		EVP_DigestUpdate(c, data, len);
}

static void put_str(EVP_MD_CTX *c, const char *s)
{
	put_bytes(c, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static int cmp_label(const void *a, const void *b)
{
	const char *const *x = *(const char *const *const *)a;
	const char *const *y = *(const char *const *const *)b;
	int k = strcmp(x[0], y[0]);

	return k != 0 ? k : strcmp(x[1], y[1]);
}

int spd_request_fingerprint(const spd_start_params *sp, uint8_t out[SPD_FINGERPRINT_LEN])
{
	const char *const **byk = NULL;
	EVP_MD_CTX *c = NULL;
	unsigned int len = 0;
	int rc = -ENOMEM;

	if (sp->label_count > 0) {
		byk = malloc(sp->label_count * sizeof *byk);
		if (byk == NULL)
			goto out;
		for (uint32_t i = 0; i < sp->label_count; i++)
			byk[i] = &sp->labels[2 * i];
		qsort(byk, sp->label_count, sizeof *byk, cmp_label);
	}
	c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		goto out;
	EVP_DigestUpdate(c, DOMAIN_TAG, sizeof DOMAIN_TAG - 1);
	put_str(c, sp->target);
	/* Another caller's retry is another request: a request_id never hands
	 * one token's process to another. */
	put_str(c, sp->caller);
	put_u64(c, sp->argc);
	for (uint32_t i = 0; i < sp->argc; i++)
		put_str(c, sp->argv[i]);
	put_bytes(c, sp->input, sp->input_len);
	put_u64(c, sp->label_count);
	for (uint32_t i = 0; i < sp->label_count; i++) {
		put_str(c, byk[i][0]);
		put_str(c, byk[i][1]);
	}
	put_u64(c, (uint64_t)sp->timeout_ms);
	put_u64(c, (uint64_t)sp->grace_ms);
	if (EVP_DigestFinal_ex(c, out, &len) == 1 && len == SPD_FINGERPRINT_LEN)
		rc = 0;
out:
	EVP_MD_CTX_free(c);
	free(byk);
	return rc;
}
