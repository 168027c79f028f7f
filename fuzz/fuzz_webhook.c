/*
 * The webhook signature check (server/webhook.c ps_webhook_signature_valid) on its own; the
 * payloads themselves go through the router in fuzz_http_api. Input: "SECRET\nHEADER\nBODY".
 * Property: a header is accepted exactly when it is "sha256=" and the HMAC-SHA256 of the body
 * in hex (either letter case), and the correct header is always accepted.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <strings.h>

#include "fuzz.h"
#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char *nl1 = memchr(s, '\n', size), *nl2;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char good[7 + 64 + 1] = "sha256=";

	if (!nl1 || !(nl2 = memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - s)))) {
		free(s);
		return 0;
	}
	*nl1 = *nl2 = 0;
	const char *secret = s, *header = nl1 + 1;
	const char *body = nl2 + 1;
	size_t blen = size - (size_t)(body - s);
	/* The body as its own allocation of exactly its size. */
	char *b = malloc(blen ? blen : 1);
	memcpy(b, body, blen);

	bool ok = ps_webhook_signature_valid(secret, b, blen, header);
	if (secret[0]) {
		FUZZ_ASSERT(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)b,
				 blen, mac, &maclen) && maclen == 32);
		for (int i = 0; i < 32; i++)
			snprintf(good + 7 + 2 * i, 3, "%02x", mac[i]);
		FUZZ_ASSERT(ps_webhook_signature_valid(secret, b, blen, good));
		FUZZ_ASSERT(ok == (strncmp(header, "sha256=", 7) == 0 &&
				   strcasecmp(header + 7, good + 7) == 0));
	} else {
		FUZZ_ASSERT(!ok);
	}
	free(b);
	free(s);
	return 0;
}
