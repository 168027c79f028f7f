/*
 * GitHub's answers through the real GitHub source (source/github/): the repository, branches
 * with their Link pages, the branch and commit heads, trees, compares, blobs, error bodies and
 * rate-limit headers, each with the status and headers the input gives (fakegh.h describes the
 * script format). The flow is the one a sync runs (github_flow.h).
 */
#include "fakegh.h"
#include "fuzz.h"
#include "github_flow.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fakegh_start();
	/* Small enough that a few listed blobs take the tarball, one takes the blob requests. */
	setenv("PROJSYNC_GITHUB_TARBALL_MIN", "2", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fakegh_load(data, size);
	github_flow();
	fakegh_reset();
	return 0;
}
