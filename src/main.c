/*
 * projsync: everything happens in cli/ (see cli/cli.h); main stays tiny so tests and tools link
 * the same code.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return ps_cli_main(argc, argv);
}
