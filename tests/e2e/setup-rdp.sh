#!/usr/bin/env bash
# Prepares this machine (Debian 12, root) for the end-to-end RDP test in tests/cli/e2e.rs:
# a real xrdp server on 127.0.0.1:33890 (no systemd, no session manager: the test only
# authenticates), the real FreeRDP 2 client and Xvfb, and a test-only local user with no
# login shell (/usr/sbin/nologin) and a random password made for this run. Also OpenSSH's
# server and client binaries (no service started) for the `bprof proxy` test, which runs its
# own sshd on a loopback port.
# Called by with-xrdp.sh, which also removes all of it afterwards (teardown-rdp.sh).
#
# BPROF_E2E_DIR: an empty directory of root's (with-xrdp.sh makes one with mktemp) for xrdp's
# config, key, log and pid, and `password` (0600, root only), which the test reads.
set -euo pipefail

port="${BPROF_E2E_XRDP_PORT:-33890}"
conf_dir="${BPROF_E2E_DIR:?setup-rdp.sh: set BPROF_E2E_DIR (run it through tests/e2e/with-xrdp.sh)}"
user=bprof-e2e

if [ "$(id -u)" != 0 ]; then
  echo "setup-rdp.sh: run as root (it installs xrdp, freerdp2-x11 and xvfb)" >&2
  exit 1
fi
if [ ! -d "$conf_dir" ] || [ -L "$conf_dir" ] || [ "$(stat -c %u "$conf_dir")" != 0 ]; then
  echo "setup-rdp.sh: $conf_dir is not a directory of root's" >&2
  exit 1
fi
chmod 0700 "$conf_dir"

need=""
for pkg in xrdp freerdp2-x11 xvfb xauth openssl openssh-server openssh-client; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need="$need $pkg"
done
if [ -n "$need" ]; then
  echo "setup-rdp.sh: installing$need"
  export DEBIAN_FRONTEND=noninteractive
  # packages install their binaries only: no service is started (the tests start their own
  # sshd on a loopback port, and stop it)
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && made_policy=1
  fi
  apt-get install -y --no-install-recommends $need >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null; }
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if listening; then
  echo "setup-rdp.sh: something listens on 127.0.0.1:$port already (tests/e2e/teardown-rdp.sh stops an xrdp of an earlier run)" >&2
  exit 1
fi

# no login shell; a password for this run only, never on a command line or in a file but
# the root-only one the test reads
if id "$user" >/dev/null 2>&1; then
  usermod -s /usr/sbin/nologin "$user"
else
  useradd -m -s /usr/sbin/nologin "$user"
fi
password=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
(umask 077 && printf '%s' "$password" > "$conf_dir/password")
printf '%s:%s\n' "$user" "$password" | chpasswd

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$conf_dir/key.pem" -out "$conf_dir/cert.pem" 2>/dev/null
sed -e "s#^port=3389\$#port=tcp://127.0.0.1:$port#" \
    -e "s#^certificate=\$#certificate=$conf_dir/cert.pem#" \
    -e "s#^key_file=\$#key_file=$conf_dir/key.pem#" \
    -e "s#^LogFile=xrdp.log\$#LogFile=$conf_dir/xrdp.log#" \
    /etc/xrdp/xrdp.ini > "$conf_dir/xrdp.ini"

sh /usr/share/xrdp/socksetup
if [ -f /run/xrdp/xrdp.pid ] && ! kill -0 "$(cat /run/xrdp/xrdp.pid)" 2>/dev/null; then
  rm -f /run/xrdp/xrdp.pid
fi
# in the foreground of a session of its own, so that teardown-rdp.sh stops it and every
# connection process it forked by one process group id
setsid xrdp --nodaemon -c "$conf_dir/xrdp.ini" </dev/null >>"$conf_dir/xrdp.out" 2>&1 &
echo $! > "$conf_dir/xrdp.pid"
for _ in $(seq 100); do
  if listening; then
    echo "setup-rdp.sh: xrdp listens on 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "setup-rdp.sh: xrdp did not start; see $conf_dir/xrdp.log" >&2
exit 1
