/*
 * Memory front matter and title extraction (core/memory.c ps_memory_parse): a markdown file
 * from someone else's repository becomes an entry. Input: "PATH\0TEXT" when a NUL occurs in
 * the first 256 bytes, else TEXT with the path "notes/a.md".
 * Properties: the bounds memory.h promises hold, and the entry always serialises to JSON.
 */
#include <jansson.h>

#include "core/memory.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ps_memory_entry e = {0};
	const uint8_t *nul = memchr(data, 0, size < 256 ? size : 256);
	char *path = nul ? fuzz_cstr(data, (size_t)(nul - data)) : strdup("notes/a.md");
	const uint8_t *text = nul ? nul + 1 : data;
	size_t len = nul ? size - (size_t)(nul + 1 - data) : size;
	/* The parser takes a length: keep the bytes exactly (no terminator past them). */
	char *copy = malloc(len ? len : 1);

	memcpy(copy, text, len);
	ps_memory_parse(&e, path, copy, len);
	FUZZ_ASSERT(e.title != NULL && e.content != NULL);
	FUZZ_ASSERT(strlen(e.title) <= PS_MEMORY_MAX_TITLE);
	FUZZ_ASSERT(e.tags.n <= PS_MEMORY_MAX_TAGS);
	for (size_t i = 0; i < e.tags.n; i++)
		FUZZ_ASSERT(strlen(e.tags.v[i]) <= PS_MEMORY_MAX_TAG);
	json_t *j = ps_memory_entry_to_json(&e);
	FUZZ_ASSERT(j != NULL);
	char *dump = json_dumps(j, 0);
	FUZZ_ASSERT(dump != NULL);
	free(dump);
	json_decref(j);
	ps_memory_entry_dispose(&e);
	free(copy);
	free(path);
	return 0;
}
