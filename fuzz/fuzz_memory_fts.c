/*
 * Memory search text -> FTS5 query (core/memory.c ps_memory_fts_query). The promise is that
 * what a user types cannot carry FTS5 syntax, so the property is checked against SQLite itself:
 * every query the function returns must be accepted by FTS5 MATCH on a table made like the
 * store's (same tokenizer), and searching must not fail.
 */
#include <sqlite3.h>

#include "core/memory.h"
#include "fuzz.h"
#include "util/error.h"

static sqlite3 *db;
static sqlite3_stmt *stmt;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "CREATE VIRTUAL TABLE t USING fts5(title, content, tags, "
			 "tokenize = 'unicode61 remove_diacritics 2');"
			 "INSERT INTO t VALUES ('Deploy notes', 'how we deploy: NEAR the end', 'ops');"
			 "INSERT INTO t VALUES ('café', 'naïve \"quoted\" text', 'x');",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?1", -1, &stmt, NULL) !=
		    SQLITE_OK)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q = fuzz_cstr(data, size), *fts = NULL;
	int rc = ps_memory_fts_query(&fts, q);

	if (rc == 0) {
		int step;
		FUZZ_ASSERT(fts != NULL && fts[0] == '"');
		sqlite3_bind_text(stmt, 1, fts, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
			;
		if (step != SQLITE_DONE)
			fprintf(stderr, "FTS5 rejected %s: %s\n", fts, sqlite3_errmsg(db));
		FUZZ_ASSERT(step == SQLITE_DONE);
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	} else {
		FUZZ_ASSERT(rc == PS_EINVAL || rc == PS_ETOOBIG);
		FUZZ_ASSERT(fts == NULL);
	}
	free(fts);
	free(q);
	ps_error_clear();
	return 0;
}
