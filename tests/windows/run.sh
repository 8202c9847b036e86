#!/usr/bin/env bash
# The Windows suite: bprof.exe, cross-built with mingw-w64, run under Wine against the loopback
# fake bastion and a fake az.cmd (tests/windows/*.rs). Called by .ci/run; on its own:
#   bash tests/windows/run.sh
# It installs what it needs as Debian packages (mingw-w64, wine64), builds into
# target/windows, and fails (never skips) when a step cannot run. Wine's server is stopped at
# the end, however the script ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$(date +%s)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need x86_64-w64-mingw32-gcc || ! need wine; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    gcc-mingw-w64-x86-64 wine64 wine
fi
for tool in x86_64-w64-mingw32-gcc wine wineserver; do
  need "$tool" || { echo "windows suite: $tool is missing" >&2; exit 1; }
done
rustup target add x86_64-pc-windows-gnu

out=$root/target/windows
bin=$out/bin
mkdir -p "$bin"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
# no debug info: the .exe stays small and links fast
CARGO_PROFILE_DEV_DEBUG=0 cargo build --locked --target x86_64-pc-windows-gnu \
  --target-dir "$out/cargo"
exe_dir=$out/cargo/x86_64-pc-windows-gnu/debug

# Wine 8 lacks ProcessPrng (bcryptprimitives.dll), which Rust's std imports: a stand-in beside
# the test's bprof.exe, for this suite only (never shipped), over advapi32's RtlGenRandom
x86_64-w64-mingw32-gcc -shared -O2 -o "$exe_dir/bcryptprimitives.dll" \
  tests/windows/bcryptprimitives.c tests/windows/bcryptprimitives.def -ladvapi32
# the fake az: az.cmd starts fake_az.exe as the real az.cmd starts python
x86_64-w64-mingw32-gcc -O2 -o "$bin/fake_az.exe" tests/windows/fake_az.c
printf '@"%%~dp0fake_az.exe" %%*\r\n' > "$bin/az.cmd"
# the fake mstsc: records what it was given (the gateway path's client)
x86_64-w64-mingw32-gcc -O2 -o "$bin/mstsc.exe" tests/windows/fake_mstsc.c

export WINEPREFIX=$out/prefix WINEDEBUG=-all
cleanup() { wineserver -k 2>/dev/null || true; }
trap cleanup EXIT
# the prefix (made once), then one server for the whole suite, so that each test's bprof.exe
# starts in a fraction of a second
mkdir -p "$WINEPREFIX"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  # wine64 alone has no 32-bit side, which wineboot reports (and says so in its status)
  wineboot -i || true
  wineserver -w
  [ -f "$WINEPREFIX/system.reg" ] || { echo "windows suite: wineboot made no prefix" >&2; exit 1; }
fi
wineserver -p
# Wine's services start now, away from the tests' files and pipes
wine cmd /c exit </dev/null >/dev/null 2>&1

export BPROF_WINDOWS_EXE=$exe_dir/bprof.exe BPROF_WINDOWS_BIN=$bin
# the suite's own tests are the Linux side (the fake bastion, the checks)
cargo test --locked --test windows -- --test-threads=2
echo "windows suite: passed in $(( $(date +%s) - started )) s"
