#!/usr/bin/env bash
# Runs a command (the README's: `cargo test --locked`) with the end-to-end RDP test's parts
# set up (setup-rdp.sh: xrdp on 127.0.0.1:33890, a nologin user with a random password), and
# removes them afterwards (teardown-rdp.sh), whatever the command's outcome, also on Ctrl-C.
# Exits with the command's status.
#
#   bash tests/e2e/with-xrdp.sh cargo test --locked
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# = 0 ]; then
  echo "usage: with-xrdp.sh COMMAND [ARG]...  (e.g. cargo test --locked)" >&2
  exit 64
fi

# what an interrupted earlier run (or the old setup script, which left xrdp running) left
bash "$here/teardown-rdp.sh" >/dev/null
BPROF_E2E_DIR=$(mktemp -d /tmp/bprof-e2e-xrdp.XXXXXX)
export BPROF_E2E_DIR
trap 'bash "$here/teardown-rdp.sh"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
bash "$here/setup-rdp.sh"
"$@"
