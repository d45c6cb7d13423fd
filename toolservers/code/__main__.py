"""`python -m toolservers.code`: serve the sandbox over stdio."""

from toolservers._common import serve
from toolservers.code.server import build_server

serve(build_server())
