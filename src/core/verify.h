/*
 * `projsync verify` and POST /projects/{name}/verify: re-checks a stored snapshot from its own
 * rows, without the source. The git tree id hashed from its file versions (model/tree.h) must be
 * the tree the sync recorded from its commit; the directory trees stored with it must be the
 * ones its files make; and, with blobs, every stored blob must hash to its id (like git fsck).
 * Files kept as metadata only (over the size limit) have no content to check: counted, not
 * problems.
 */
#ifndef PS_CORE_VERIFY_H
#define PS_CORE_VERIFY_H

#include <jansson.h>
#include <stdbool.h>

#include "model/model.h"
#include "store/store.h"

struct ps_verify_problem {
	char *path;           /* a file, or a directory with a trailing '/' ("/" the root) */
	char *code;           /* tree_mismatch | dir_tree_mismatch | blob_mismatch | blob_missing |
	                         blob_unreadable */
	char *message;
};

struct ps_verify_report {
	char *project;
	int64_t sync_id;
	char *commit;                 /* NULL: the repository was empty */
	char *tree;                   /* recorded with the sync (the commit's root tree) */
	char computed[PS_SHA_HEX];    /* hashed from the rows */
	int64_t files, directories;
	bool directories_stored;      /* false for a snapshot from before schema 8 */
	bool blobs;                   /* blob contents were checked */
	int64_t blobs_checked;        /* distinct blobs whose content was hashed */
	int64_t blobs_not_stored;     /* files kept as metadata only */
	struct ps_verify_problem *problems; /* sorted by path */
	size_t nproblems;
};

/*
 * Verifies the snapshot of sync `at` of project `p` (0 = the latest). PS_ENOTFOUND when there is
 * none (slug no_snapshot) or `at` is not a sync of the project, PS_ECONFLICT (not_succeeded)
 * for a sync that did not succeed. A snapshot that is not sound is not an error: 0 with the
 * problems in the report.
 */
int ps_verify(struct ps_store *s, const struct ps_project *p, int64_t at, bool blobs,
	      struct ps_verify_report *out);
void ps_verify_report_dispose(struct ps_verify_report *r);
json_t *ps_verify_report_to_json(const struct ps_verify_report *r);
/* The one-line summary of a sound snapshot (malloc'd). */
char *ps_verify_summary(const struct ps_verify_report *r);

#endif
