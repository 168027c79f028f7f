/*
 * The tarball stream (source/github/fetch.c tar_next): the input is the body GitHub answers for
 * /tarball/{commit} (tar or tar.gz), read by libarchive through projsync's own handling of
 * entry types, sizes, symlink targets and content verification; the repository, head and tree
 * answers around it are fixed (the tree lists the blobs the seed tarballs hold).
 */
#include "fakegh.h"
#include "fuzz.h"
#include "github_flow.h"

#define COMMIT "2222222222222222222222222222222222222222"
#define TREE "3333333333333333333333333333333333333333"

/* Blobs "hello\n", "#!/bin/sh\necho hi\n", "" and the symlink target "README.md". */
static const char tree_json[] =
	"{\"sha\":\"" TREE "\",\"truncated\":false,\"tree\":["
	"{\"path\":\"README.md\",\"mode\":\"100644\",\"type\":\"blob\","
	"\"sha\":\"ce013625030ba8dba906f756967f9e9ca394464a\",\"size\":6},"
	"{\"path\":\"bin\",\"mode\":\"040000\",\"type\":\"tree\","
	"\"sha\":\"4444444444444444444444444444444444444444\"},"
	"{\"path\":\"bin/run\",\"mode\":\"100755\",\"type\":\"blob\","
	"\"sha\":\"4163036efa65bd4a469e752267498f01ea36a55c\",\"size\":18},"
	"{\"path\":\"empty\",\"mode\":\"100644\",\"type\":\"blob\","
	"\"sha\":\"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\",\"size\":0},"
	"{\"path\":\"link\",\"mode\":\"120000\",\"type\":\"blob\","
	"\"sha\":\"42061c01a1c70097d1e4579f29a5adf40abdec95\",\"size\":9}]}";

static const char branch_json[] =
	"{\"name\":\"main\",\"commit\":{\"sha\":\"" COMMIT "\",\"commit\":{\"tree\":{\"sha\":\""
	TREE "\"}}}}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fakegh_start();
	setenv("PROJSYNC_GITHUB_TARBALL_MIN", "1", 1);
	/* A corrupt tarball is not fetched again: one read per input. */
	setenv("PROJSYNC_GITHUB_RETRIES", "0", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char repo[] = "{\"default_branch\":\"main\"}";
	static const char ct_json[] = "Content-Type: application/json\n";

	fakegh_add("repo", 200, ct_json, repo, sizeof(repo) - 1);
	fakegh_add("repo", 200, ct_json, repo, sizeof(repo) - 1);
	fakegh_add("branch", 200, ct_json, branch_json, sizeof(branch_json) - 1);
	fakegh_add("commit", 200, "Content-Type: application/vnd.github.sha\n", COMMIT,
		   strlen(COMMIT));
	fakegh_add("tree", 200, ct_json, tree_json, sizeof(tree_json) - 1);
	fakegh_add("tarball", 200, "Content-Type: application/x-gzip\n", data, size);
	github_flow();
	fakegh_reset();
	return 0;
}
