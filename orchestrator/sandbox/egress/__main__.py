"""``python -m orchestrator.sandbox.egress HOST PORT ALLOWED [DENIED_CIDRS]``: run the proxy."""

import sys

from orchestrator.sandbox.egress.proxy import main

main(sys.argv[1:])
