#!/usr/bin/env bash
# Install what XBoot needs to build, test and run its demo on Debian 12. Idempotent: packages
# already present are not touched, and apt is not called at all when nothing is missing.
# `install-deps.sh fuzz` adds clang and its libFuzzer runtime for `make fuzz`; `install-deps.sh
# bench` adds the peer and tools of `make bench` (cfssl, perf, taskset, ss).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  libssl-dev libevent-dev libcjson-dev libinih-dev libsqlite3-dev libcmocka-dev
  # the device SDK (libxboot: HTTPS via libcurl) and the sample device (MQTT via libmosquitto)
  libcurl4-openssl-dev libmosquitto-dev
  # tests and demo: real peers and tools (mosquitto is the demo's and the tests' MQTT broker;
  # valgrind checks the device library)
  openssl curl jq gnutls-bin sqlite3 procps python3 python3-cryptography
  mosquitto mosquitto-clients valgrind
  # CA keys in a PKCS#11 token: p11-kit's pkcs11.h and URI parser (build), SoftHSM2 as the
  # tests' token and pkcs11-tool (opensc) to inspect it
  libp11-kit-dev softhsm2 opensc
  # The PostgreSQL registry backend: libpq to build it, and a server and psql for the e2e suite,
  # which runs against a private throwaway cluster (tests/e2e/lib.sh, XB_BACKEND=postgresql;
  # initdb and pg_ctl live in /usr/lib/postgresql/15/bin, off PATH)
  postgresql-15 postgresql-client-15 libpq-dev
)

for group in "$@"; do
  case "$group" in
    fuzz) PACKAGES+=(clang libclang-rt-14-dev) ;;
    # bench/run.sh: Debian's cfssl (the peer it compares with), perf (profiles), taskset
    # (util-linux: pinning), ss (iproute2: cfssl's port).
    bench) PACKAGES+=(golang-cfssl linux-perf util-linux iproute2) ;;
    *) echo "install-deps: unknown group '$group' (fuzz, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The tests start their own PostgreSQL cluster on a free port; the system "main" cluster that
# installing a server version would create and start would only hold port 5432 and run as a
# service nobody uses. As the official postgres Docker images do: install postgresql-common
# first (its postinst writes /etc/postgresql-common/createcluster.conf), turn
# create_main_cluster off in it, then install the server. Only when postgresql-common is new:
# an installed one's file is the administrator's.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]] &&
  ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "install ok installed"; then
  $SUDO apt-get install -y -qq --no-install-recommends postgresql-common
  $SUDO sed -ri 's/^#? *(create_main_cluster) *=.*$/\1 = false/' \
    /etc/postgresql-common/createcluster.conf
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
