#include "harness.h"
static void placeholder(void) {}
PS_TESTS(PS_TEST(placeholder))
