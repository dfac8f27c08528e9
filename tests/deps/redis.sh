#!/usr/bin/env bash
# redis-server for the fleet-mode tests (tests/fleet_e2e.rs and the runtime's
# `fleet` unit tests): each test starts its own server on a free port with a scratch
# directory and stops it after. Debian bookworm's package, pinned; does nothing when
# it is installed at this version. The packaged service is not started or enabled.
set -euo pipefail
REDIS_VERSION="5:7.0.15-1~deb12u10"

installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

if [ "$(installed redis-server)" = "$REDIS_VERSION" ] && [ "$(installed redis-tools)" = "$REDIS_VERSION" ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# No init scripts may start the packaged service (the tests start their own).
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.agentd-redis
chmod +x /usr/sbin/policy-rc.d.agentd-redis
had_policy=0
if [ -e /usr/sbin/policy-rc.d ]; then had_policy=1; else cp /usr/sbin/policy-rc.d.agentd-redis /usr/sbin/policy-rc.d; fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    "redis-server=$REDIS_VERSION" "redis-tools=$REDIS_VERSION"
if [ "$had_policy" = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
rm -f /usr/sbin/policy-rc.d.agentd-redis
