#!/usr/bin/env bash
# Install Autobahn|Testsuite (wstest) on Debian 12, which has no Python 2.
#
# autobahntestsuite (even 25.10.1 on PyPI) is Python 2.7-only code. Debian 11
# (bullseye) still ships python2.7, so this script:
#   1. downloads bullseye's python2.7 .debs with apt-get, using a private apt
#      state directory (the machine's own apt sources and dpkg are untouched),
#   2. unpacks them into PREFIX with dpkg -x (nothing is installed system-wide),
#   3. makes a Python 2.7 virtualenv VENV (virtualenv<20.22 from PyPI can still
#      create 2.7 environments) and pip-installs the pinned requirements.
# Takes 25 s to a minute. Afterwards:
#   export LD_LIBRARY_PATH=PREFIX/usr/lib/x86_64-linux-gnu
#   VENV/bin/wstest -a      # prints Autobahn 0.10.9 / AutobahnTestSuite 25.10.1
# It relies on deb.debian.org still serving bullseye; once bullseye moves to
# archive.debian.org, change the "deb" line below accordingly.
#
# Usage: setup_autobahn_py27.sh [PREFIX] [VENV]
#        (defaults: ${TMPDIR:-/tmp}/py27 and ${TMPDIR:-/tmp}/ab27; an auxiliary
#        Python 3 venv goes to VENV-tools)
set -euo pipefail
PREFIX=${1:-${TMPDIR:-/tmp}/py27}
VENV=${2:-${TMPDIR:-/tmp}/ab27}
HERE=$(cd "$(dirname "$0")" && pwd)
APTDIR=$(mktemp -d)
trap 'rm -rf "$APTDIR"' EXIT

mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs" "$APTDIR/sources.list.d"
touch "$APTDIR/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main" \
  > "$APTDIR/sources.list"
APT_OPTS=(-o "Dir::Etc::sourcelist=$APTDIR/sources.list" -o "Dir::Etc::sourceparts=$APTDIR/sources.list.d"
          -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
          -o "Dir::State::status=$APTDIR/status" -o "APT::Sandbox::User=root")
apt-get "${APT_OPTS[@]}" update -qq
(cd "$APTDIR/debs" && apt-get "${APT_OPTS[@]}" download -qq \
   python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libssl1.1 libffi7)
mkdir -p "$PREFIX"
for deb in "$APTDIR"/debs/*.deb; do dpkg -x "$deb" "$PREFIX"; done
export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu"
"$PREFIX/usr/bin/python2.7" -c 'import ssl, zlib, ctypes, json; print("python2.7 ok,", ssl.OPENSSL_VERSION)'

python3 -m venv "$VENV-tools"
"$VENV-tools/bin/pip" install -q 'virtualenv<20.22'
"$VENV-tools/bin/virtualenv" -q -p "$PREFIX/usr/bin/python2.7" "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements-py27.txt"
"$VENV/bin/wstest" -a
