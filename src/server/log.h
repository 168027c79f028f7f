/*
 * The server's log: one line per record on stderr (journald stores it as is), in logfmt
 * (`time=... level=info msg="sync started" project=web sync_id=7`) or as one JSON object per
 * line, chosen once with `serve --log-format`. Every value is escaped for its format, so no text
 * from a request, a repository or an error message can end a line or forge a field, and every
 * value is cleaned of secrets: the registered ones (tokens from the environment) and the
 * user:password part of URLs.
 *
 * ps_log_set_format and ps_log_add_secret are called before the server starts its threads;
 * the writers are thread-safe (one fwrite per line).
 */
#ifndef PS_SERVER_LOG_H
#define PS_SERVER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ps_log_format { PS_LOG_LOGFMT, PS_LOG_JSON };

/* "logfmt" | "json" -> *out; false for anything else. */
bool ps_log_parse_format(const char *s, enum ps_log_format *out);
void ps_log_set_format(enum ps_log_format f);
enum ps_log_format ps_log_get_format(void);

/* Text that must never be written: every occurrence in a value becomes "[redacted]". NULL and
 * values under 4 bytes are ignored (they would redact ordinary words). The text is copied. */
void ps_log_add_secret(const char *secret);
void ps_log_clear_secrets(void);

enum ps_log_field_type { PS_LOG_FIELD_STR, PS_LOG_FIELD_INT };

struct ps_log_field {
	const char *key;           /* a fixed identifier: [a-z_]+ */
	enum ps_log_field_type type;
	const char *s;             /* PS_LOG_FIELD_STR; NULL is written as an empty value */
	int64_t i;                 /* PS_LOG_FIELD_INT */
};

#define PS_LOG_STR(k, v) ((struct ps_log_field){ .key = (k), .type = PS_LOG_FIELD_STR, .s = (v) })
#define PS_LOG_INT(k, v) \
	((struct ps_log_field){ .key = (k), .type = PS_LOG_FIELD_INT, .i = (int64_t)(v) })

/*
 * Formats one record (time, level, msg, then the fields in order) into a malloc'ed line ending
 * in "\n" (the caller frees it). `level`: "info", "warn" or "error". Exposed for the unit test;
 * ps_log_fields writes it.
 */
char *ps_log_format_line(int64_t now_ms, const char *level, const char *msg,
			 const struct ps_log_field *fields, size_t n);

/* Writes one record to stderr. */
void ps_log_fields(const char *level, const char *msg, const struct ps_log_field *fields,
		   size_t n);

/* Writes a free-form message as a record with no fields (ps_log's backend). */
void ps_log_message(const char *level, const char *text);

/* libmicrohttpd's MHD_OPTION_EXTERNAL_LOGGER: its own messages become records too, so every
 * line on stderr is in the chosen format. */
void ps_log_mhd(void *cls, const char *fmt, va_list ap);

/* ps_log_kv("info", "sync started", PS_LOG_STR("project", name), PS_LOG_INT("sync_id", id)) */
#define ps_log_kv(level, msg, ...)                                                          \
	do {                                                                                \
		const struct ps_log_field ps_log_f_[] = { __VA_ARGS__ };                    \
		ps_log_fields((level), (msg), ps_log_f_,                                    \
			      sizeof(ps_log_f_) / sizeof(ps_log_f_[0]));                    \
	} while (0)

#endif
