#!/bin/sh
# Install whatever Debian packages the project needs and does not have.
# Does nothing when everything is there.  Usage: tests/deps.sh [bench]
set -eu

PACKAGES="gcc make pkg-config libc6-dev
libcurl4-openssl-dev libjansson-dev libssl-dev zlib1g-dev libpq-dev
libmicrohttpd-dev
bats bats-assert bats-support mandoc jq curl util-linux procps
postgresql-15 chromium python3 clang libclang-rt-14-dev shellcheck zsh fish
cppcheck clang-tidy valgrind openssl
build-essential dpkg-dev debhelper lintian systemd systemd-container iproute2 man-db"
BENCH_PACKAGES="hyperfine wrk nginx-light gzip time gawk"

want=$PACKAGES
[ "${1:-}" = bench ] && want="$PACKAGES $BENCH_PACKAGES"

missing=
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "aistack: missing packages:$missing" >&2
	echo "aistack: run as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "aistack: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
