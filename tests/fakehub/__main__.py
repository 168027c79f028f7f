"""`python3 -m tests.fakehub --port 0 --repos DIR` (from the repository root): runs the emulator
and prints "PORT <n>" once it listens."""
from .server import main

main()
