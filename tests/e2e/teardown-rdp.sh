#!/usr/bin/env bash
# Removes what setup-rdp.sh made: stops its xrdp (and the connection processes it forked),
# deletes the test user with its home (userdel -r), and removes the config directories
# (BPROF_E2E_DIR, and any /tmp/bprof-e2e-xrdp* of root's that earlier runs, or the old
# setup script that left xrdp running, left behind). Safe to run when nothing is there.
set -uo pipefail

user=bprof-e2e

if [ "$(id -u)" != 0 ]; then
  echo "teardown-rdp.sh: run as root" >&2
  exit 1
fi

ours() { [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %u "$1")" = 0 ]; }

stop() { # stop the process ids given, TERM then KILL
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  for _ in $(seq 50); do
    local alive=0 pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null
  return 0
}

dirs=()
[ -n "${BPROF_E2E_DIR:-}" ] && dirs+=("$BPROF_E2E_DIR")
for d in /tmp/bprof-e2e-xrdp /tmp/bprof-e2e-xrdp.*; do
  [ "$d" = "${BPROF_E2E_DIR:-}" ] || dirs+=("$d")
done

for d in "${dirs[@]}"; do
  ours "$d" || continue
  pids=()
  # setup-rdp.sh's xrdp: the leader of its own process group, with its connection children
  if [ -s "$d/xrdp.pid" ]; then
    leader=$(cat "$d/xrdp.pid")
    if [[ $leader =~ ^[0-9]+$ ]]; then
      while read -r pid; do pids+=("$pid"); done < <(pgrep -g "$leader" 2>/dev/null)
    fi
  fi
  # an xrdp that daemonized itself (the old setup script): by its exact command line
  while read -r pid; do pids+=("$pid"); done < <(pgrep -x -f "xrdp (--nodaemon )?-c $d/xrdp.ini" 2>/dev/null)
  stop "${pids[@]}"
  rm -rf -- "$d"
done
if [ -f /run/xrdp/xrdp.pid ] && ! kill -0 "$(cat /run/xrdp/xrdp.pid)" 2>/dev/null; then
  rm -f /run/xrdp/xrdp.pid
fi

if id "$user" >/dev/null 2>&1; then
  userdel -r "$user" 2>/dev/null || userdel -f -r "$user" 2>/dev/null
  if id "$user" >/dev/null 2>&1; then
    echo "teardown-rdp.sh: could not remove the user $user" >&2
    exit 1
  fi
fi
echo "teardown-rdp.sh: no xrdp of the tests, no user $user, no config left"
