"""
fakehub: the GitHub REST API emulator the tests run projsync's GitHub connector against.
server.py is the emulator (stdlib only); client.py starts it as a subprocess and drives its
control API; openapi.py checks JSON against GitHub's own OpenAPI description.
"""
from .client import FakeHub  # noqa: F401
