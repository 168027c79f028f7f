/*
 * The calls a sync makes on a GitHub source, in the pipeline's order, for the two targets that
 * drive source/github/ against fakegh: branches, the head without and with a known commit
 * (the conditional request, then the recursive tree and the compare), the listing, and a fetch
 * session over the listed blobs (the tarball or blob requests). Every blob handed over must
 * hash to the SHA it is delivered for: the source promises verified content.
 */
#ifndef PS_FUZZ_GITHUB_FLOW_H
#define PS_FUZZ_GITHUB_FLOW_H

#define FLOW_KNOWN "1111111111111111111111111111111111111111"

void github_flow(void);

#endif
