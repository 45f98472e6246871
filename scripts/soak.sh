#!/usr/bin/env bash
# A soak of awgproxy client -> server through the impairment relay (tests/integration/soak.py):
# bulk both ways, connection churn, UDP and idle streams at once, with loss switched on and off,
# a reload and a server restart; every byte checked, RSS / fds / CPU sampled.
#   sudo scripts/soak.sh --minutes 60 [--transport ip|quic] [--workdir DIR]
# Needs root (network namespaces) and a build in build/ (or AWGPROXY_BIN, AWG_IMPAIR_RELAY_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
export AWGPROXY_BIN=${AWGPROXY_BIN:-$PWD/build/awgproxy}
export AWG_IMPAIR_RELAY_BIN=${AWG_IMPAIR_RELAY_BIN:-$PWD/build/tests/impair_relay}
export AWG_SOURCE_DIR=$PWD
export PYTHONPATH=$PWD/tests/integration${PYTHONPATH:+:$PYTHONPATH}
exec /usr/bin/python3 tests/integration/soak.py "$@"
