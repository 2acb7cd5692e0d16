#!/usr/bin/env bash
# Failover figures of the HA stack (bench/failover.mjs says which), against a fresh HA stack with the
# release binaries on a free port range. ./dev bench failover (which builds first) runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec ./dev with-ha-stack release node bench/failover.mjs
