/*
 * Thread-local last error. Messages are bounded: an error message is for one line of a terminal
 * or one JSON field, never a dump.
 */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PS_ERROR_MAX 1024

static _Thread_local struct {
	int code;
	char slug[64];
	char message[PS_ERROR_MAX];
} last;

const char *ps_error_code_name(int code)
{
	switch (code) {
	case PS_OK: return "ok";
	case PS_EINVAL: return "invalid";
	case PS_ENOTFOUND: return "not_found";
	case PS_ECONFLICT: return "conflict";
	case PS_EUPSTREAM: return "upstream";
	case PS_ESTORE: return "store";
	case PS_ECANCELLED: return "cancelled";
	case PS_ENOMEM: return "out_of_memory";
	case PS_EIO: return "io";
	case PS_ETOOBIG: return "too_big";
	case PS_EEMPTY: return "empty";
	case PS_ENOTSUPP: return "not_supported";
	default: return "failed";
	}
}

int ps_error_set(int code, const char *slug, const char *fmt, ...)
{
	va_list ap;

	last.code = code;
	snprintf(last.slug, sizeof(last.slug), "%s", slug ? slug : ps_error_code_name(code));
	va_start(ap, fmt);
	vsnprintf(last.message, sizeof(last.message), fmt, ap);
	va_end(ap);
	return code;
}

int ps_error_wrap(int code, const char *fmt, ...)
{
	char prefix[PS_ERROR_MAX], old[PS_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last.message, sizeof(old));
	/* Truncation is intended: the message stays one bounded line. */
	size_t plen = strlen(prefix), olen = strlen(old);
	if (plen > sizeof(last.message) - 1)
		plen = sizeof(last.message) - 1;
	if (olen > sizeof(last.message) - 1 - plen)
		olen = sizeof(last.message) - 1 - plen;
	memcpy(last.message, prefix, plen);
	memcpy(last.message + plen, old, olen);
	last.message[plen + olen] = '\0';
	if (last.code == 0) {
		last.code = code;
		snprintf(last.slug, sizeof(last.slug), "%s", ps_error_code_name(code));
	}
	return code;
}

const char *ps_error_message(void) { return last.message; }
const char *ps_error_slug(void) { return last.slug[0] ? last.slug : ps_error_code_name(last.code); }
int ps_error_code(void) { return last.code; }

void ps_error_clear(void)
{
	last.code = 0;
	last.slug[0] = '\0';
	last.message[0] = '\0';
}
