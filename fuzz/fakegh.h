/*
 * A fake GitHub inside the fuzz process (libmicrohttpd on 127.0.0.1), so that the GitHub source
 * is fuzzed through its real request layer: curl, headers, status handling, retries, redirects,
 * pagination and the tarball stream. Answers are queued per kind of endpoint and served in
 * order; a kind with nothing left answers 404.
 *
 * Script format (fakegh_load), one section per answer:
 *
 *   @@@ KIND STATUS
 *   Header-Name: value
 *
 *   body bytes up to the next line that starts with "@@@ " (or the end)
 *
 * KIND: repo | branches | branch | commit | tree | blob | compare | tarball | other.
 * "{API}" anywhere is replaced by the fake's base URL (for Link and Location headers). A
 * Location that leaves the fake is dropped, so no input can send curl elsewhere.
 */
#ifndef PS_FUZZ_FAKEGH_H
#define PS_FUZZ_FAKEGH_H

#include <stddef.h>
#include <stdint.h>

/* Starts the fake (once) and sets PROJSYNC_GITHUB_API and fast, wait-free retry settings. */
void fakegh_start(void);
const char *fakegh_base(void);
void fakegh_load(const uint8_t *data, size_t size);
void fakegh_add(const char *kind, unsigned status, const char *headers, const void *body,
		size_t len);
/* Drops every queued answer. */
void fakegh_reset(void);

#endif
