/*
 * Thread-local last error. Messages are bounded: an error message is for one line of a terminal
 * or one JSON field, never a dump.
 */
#include "util/error.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A message names the URL it failed on, and it goes where a source's credentials must not:
 * the API (to read-only tokens too), the store's sync errors, the web page, the terminal.
 * Redacted before the cut, so a URL cut short cannot leave half its password. */
static void set_message(const char *text)
{
	char *r = strstr(text, "://") ? ps_redact_userinfo(text) : NULL;

	snprintf(last.message, sizeof(last.message), "%s", r ? r : text);
	free(r);
}

int ps_error_set(int code, const char *slug, const char *fmt, ...)
{
	char full[4 * PS_ERROR_MAX];
	va_list ap;

	last.code = code;
	snprintf(last.slug, sizeof(last.slug), "%s", slug ? slug : ps_error_code_name(code));
	va_start(ap, fmt);
	vsnprintf(full, sizeof(full), fmt, ap);
	va_end(ap);
	set_message(full);
	return code;
}

int ps_error_wrap(int code, const char *fmt, ...)
{
	char prefix[PS_ERROR_MAX], full[2 * PS_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Truncation is intended: the message stays one bounded line. */
	snprintf(full, sizeof(full), "%s%s", prefix, last.message);
	set_message(full);
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
