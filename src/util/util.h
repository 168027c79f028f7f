/*
 * Small helpers shared by every part: allocation that reports PS_ENOMEM, time, git blob hashing,
 * a bounded growable byte buffer, and string vectors.
 */
#ifndef PS_UTIL_UTIL_H
#define PS_UTIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PS_SHA_HEX 41 /* 40 hex digits + NUL */

/* malloc/calloc/strdup that abort on exhaustion: projsync cannot do anything useful without
 * memory, and checking every small allocation would drown the logic. Sizes a peer controls are
 * bounded before they reach these. */
void *ps_malloc(size_t n);
void *ps_calloc(size_t n, size_t size);
void *ps_realloc(void *p, size_t n);
char *ps_strdup(const char *s);
char *ps_strndup(const char *s, size_t n);
char *ps_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The first byte string after every string that starts with the `len` bytes at `p` (a prefix's
 * successor, the open end of its range in byte order): `p` without its trailing 0xff bytes,
 * its last byte plus one. NULL when there is none (`p` empty or all 0xff): the range then runs
 * to the end. The stores' listings by prefix bound their index ranges with it. */
char *ps_prefix_end(const char *p, size_t len);
/* The value of one hex digit (either case), or -1. */
int ps_hex_digit(int c);

/* Milliseconds since the epoch (wall clock) and a monotonic clock for durations. */
int64_t ps_now_ms(void);
int64_t ps_mono_ms(void);
/* RFC 3339 UTC with milliseconds ("2026-11-25T18:39:36.123Z"); out holds at least 32 bytes. */
void ps_time_rfc3339(int64_t ms, char *out, size_t outlen);

/* Git's blob id of `data`: SHA-1 over "blob <len>\0" + data, as 40 lowercase hex digits. */
void ps_git_blob_sha(const void *data, size_t len, char out[PS_SHA_HEX]);
/* True when s is exactly 40 lowercase hex digits. */
bool ps_sha_valid(const char *s);
/* The offset of the first byte of `s` that does not start a well-formed UTF-8 sequence
 * (overlong forms, surrogates and code points past U+10FFFF included), or SIZE_MAX when the
 * whole string is UTF-8. */
size_t ps_utf8_first_bad(const char *s);
/* `s` percent-encoded (malloc\'d): RFC 3986\'s unreserved characters and those in `keep` stay
 * as they are, every other byte is %XX. */
char *ps_percent_encode(const char *s, const char *keep);
/* `s` (malloc'd copy) with the credentials of every URL in it replaced by "[redacted]": the
 * user part (https://TOKEN@host, https://user:password@host), for ssh and postgresql only a
 * password (ssh://git@host stays), also where the text quotes them again before an '@'. Messages and
 * listings show sources through it; the store keeps them whole, to fetch with. */
char *ps_redact_userinfo(const char *s);

/* A growable byte buffer with a hard maximum (curl's dynbuf idea): appending past `max` fails
 * with PS_ETOOBIG instead of growing without bound. Always NUL-terminated when non-empty. */
struct ps_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};
void ps_buf_init(struct ps_buf *b, size_t max);
void ps_buf_dispose(struct ps_buf *b);
int ps_buf_append(struct ps_buf *b, const void *data, size_t len);
int ps_buf_puts(struct ps_buf *b, const char *s);
int ps_buf_printf(struct ps_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents to the caller (free() them) and empties the buffer. */
char *ps_buf_take(struct ps_buf *b, size_t *len);

/* A vector of owned strings. */
struct ps_strv {
	char **v;
	size_t n;
	size_t cap;
};
void ps_strv_push(struct ps_strv *sv, const char *s);
/* Whether `sv` holds a string equal to `s` (a linear scan: for short lists such as tags). */
bool ps_strv_has(const struct ps_strv *sv, const char *s);
void ps_strv_dispose(struct ps_strv *sv);

/* Host name of this machine (cached) and a process identity that survives pid reuse:
 * "<pid>:<start time in clock ticks>" from /proc. */
const char *ps_hostname(void);
int ps_process_identity(int pid, char *out, size_t outlen);
/* True when the process named by identity (as above) still runs on this host. */
bool ps_process_alive(const char *identity);

/* Creates a directory and its parents (mode 0700 for those it creates). */
int ps_mkdir_p(const char *path);

#endif
