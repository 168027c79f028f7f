/*
 * Internal to core/checkout.c, exposed for its fuzz target (fuzz/fuzz_checkout_path.c): the
 * check every snapshot path passes before a checkout writes anything.
 */
#ifndef PS_CORE_CHECKOUT_INTERNAL_H
#define PS_CORE_CHECKOUT_INTERNAL_H

/* 0 when `path` may be checked out; PS_EINVAL with the message naming it otherwise. */
int ps_checkout_check_path(const char *path);

#endif
