/*
 * One error mechanism for all of projsync: a function fails by returning a negative PS_E* code,
 * and the message with its context travels beside it in a thread-local slot, set where the
 * failure is first understood. Callers pass the code up unchanged; the edge (CLI, HTTP handler,
 * sync worker) reads the message once and maps the code to an exit code or HTTP status.
 */
#ifndef PS_UTIL_ERROR_H
#define PS_UTIL_ERROR_H

enum ps_errcode {
	PS_OK = 0,
	PS_EFAIL = -1,      /* failure without a more precise class */
	PS_EINVAL = -2,     /* bad input from the user: usage, names, paths */
	PS_ENOTFOUND = -3,  /* project, sync, branch, path, blob unknown */
	PS_ECONFLICT = -4,  /* a sync is already queued or running; a name is taken */
	PS_EUPSTREAM = -5,  /* the source failed or is unreachable */
	PS_ESTORE = -6,     /* the store failed, is corrupt or read-only */
	PS_ECANCELLED = -7, /* the operation was cancelled on request */
	PS_ENOMEM = -8,
	PS_EIO = -9,        /* local file system */
	PS_ETOOBIG = -10,   /* a size limit was exceeded */
	PS_EEMPTY = -11,    /* the repository has no commits (not a failure for a sync) */
	PS_ENOTSUPP = -12,  /* the backend or source does not offer this operation */
};

/*
 * Records an error for this thread and returns `code`, so that `return ps_error_set(...)` reads
 * naturally. `slug` is a short stable machine name ("branch_not_found") or NULL for a default
 * derived from the code.
 */
int ps_error_set(int code, const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the current message with context ("project 'x': "), keeping code and slug. */
int ps_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last error's message; never NULL (empty when none). Borrowed until the next ps_error_set. */
const char *ps_error_message(void);
/* The last error's slug; never NULL. */
const char *ps_error_slug(void);
/* The last error's code (0 when cleared). */
int ps_error_code(void);
void ps_error_clear(void);

/* The default slug of a code ("not_found", "conflict", ...). */
const char *ps_error_code_name(int code);

#endif
