#!/usr/bin/env bash
# Prepares this machine (Debian 12, root) for the end-to-end RDP test in tests/cli/e2e.rs:
# a real xrdp server on 127.0.0.1:33890 (no systemd, no session manager: the test only
# authenticates), the real FreeRDP 2 client and Xvfb, and a test-only local user.
# Idempotent: installs only what is missing, starts xrdp only when the port is closed.
set -euo pipefail

port="${BPROF_E2E_XRDP_PORT:-33890}"
conf_dir=/tmp/bprof-e2e-xrdp
user=bprof-e2e
# a throwaway password for a throwaway local account; never written into an .rdp file
password=bprof-e2e-Only1

if [ "$(id -u)" != 0 ]; then
  echo "setup-rdp.sh: run as root (it installs xrdp, freerdp2-x11 and xvfb)" >&2
  exit 1
fi

need=""
for pkg in xrdp freerdp2-x11 xvfb xauth openssl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need="$need $pkg"
done
if [ -n "$need" ]; then
  echo "setup-rdp.sh: installing$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends $need >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null; }
fi

id "$user" >/dev/null 2>&1 || useradd -m -s /bin/sh "$user"
echo "$user:$password" | chpasswd

mkdir -p "$conf_dir"
if [ ! -s "$conf_dir/key.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
    -keyout "$conf_dir/key.pem" -out "$conf_dir/cert.pem" 2>/dev/null
fi
sed -e "s#^port=3389\$#port=tcp://127.0.0.1:$port#" \
    -e "s#^certificate=\$#certificate=$conf_dir/cert.pem#" \
    -e "s#^key_file=\$#key_file=$conf_dir/key.pem#" \
    -e "s#^LogFile=xrdp.log\$#LogFile=$conf_dir/xrdp.log#" \
    /etc/xrdp/xrdp.ini > "$conf_dir/xrdp.ini"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if ! listening; then
  sh /usr/share/xrdp/socksetup
  if [ -f /run/xrdp/xrdp.pid ] && ! kill -0 "$(cat /run/xrdp/xrdp.pid)" 2>/dev/null; then
    rm -f /run/xrdp/xrdp.pid
  fi
  xrdp -c "$conf_dir/xrdp.ini"
fi
for _ in $(seq 100); do
  if listening; then
    echo "setup-rdp.sh: xrdp listens on 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "setup-rdp.sh: xrdp did not start; see $conf_dir/xrdp.log" >&2
exit 1
