"""``python -m orchestrator.egress HOST PORT ALLOWED_HOSTS [DENIED_CIDRS]``: run the proxy."""

import sys

from orchestrator.egress.proxy import main

main(sys.argv[1:])
