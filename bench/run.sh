#!/usr/bin/env bash
# bprof benchmark: whole-process timings of bprof on a large generated profile set (10,000
# profiles, 1,000 vms, 50 bastions, 10 tenants in 20 files), against PyYAML's C loader merely
# parsing the same files, plus bprof on the bundled example profiles, and the overhead of
# `bprof run` over its one az process (a do-nothing az, signed in).
#
#   bench/run.sh [--large] [PATH/TO/bprof]   (default: target/release/bprof under the repo root)
#
# --large adds validate, list and plan rows on a set ten times larger (100,000 profiles, 10,000
# vms, 500 bastions, 100 tenants in 200 files, ~25 MiB) and the 100k/10k ratios of time and
# peak RSS (linear scaling is a ratio of about 10); it adds about a minute.
#
# Needs: hyperfine (apt-get install -y hyperfine, or cargo install hyperfine), GNU time at
# /usr/bin/time (apt-get install -y time), python3 with PyYAML built with libyaml (installed
# with pip when missing). Set BENCH_KEEP=1 to keep the generated profile set.
# Runs in about a minute on a 2-core machine.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LARGE=0
if [[ ${1:-} == --large ]]; then
  LARGE=1
  shift
fi
BPROF=${1:-$REPO/target/release/bprof}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- prerequisites
[[ -x $BPROF ]] || die "no bprof binary at $BPROF: build it with 'cargo build --release' in $REPO, or pass its path"
BPROF=$(cd "$(dirname "$BPROF")" && pwd)/$(basename "$BPROF")
command -v hyperfine >/dev/null \
  || die "hyperfine is not installed: 'apt-get install -y hyperfine' (Debian/Ubuntu), 'brew install hyperfine', or 'cargo install hyperfine'"
[[ -x /usr/bin/time ]] || die "GNU time is not at /usr/bin/time (for peak RSS): 'apt-get install -y time'"
command -v python3 >/dev/null || die "python3 is needed (generator and the PyYAML reference)"

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "bench: PyYAML is missing; installing it with: python3 -m pip install PyYAML" >&2
  python3 -m pip install --quiet PyYAML || die "could not install PyYAML: 'python3 -m pip install PyYAML'"
fi
if python3 -c 'import yaml, sys; sys.exit(0 if getattr(yaml, "__with_libyaml__", False) and hasattr(yaml, "CSafeLoader") else 1)'; then
  LOADER=CSafeLoader
  LOADER_NOTE="PyYAML $(python3 -c 'import yaml; print(yaml.__version__)') with libyaml (yaml.CSafeLoader)"
else
  LOADER=SafeLoader
  LOADER_NOTE="WARNING: PyYAML has no libyaml bindings (no yaml.CSafeLoader); FELL BACK to the pure-Python yaml.SafeLoader, so the reference row is much slower than libyaml. Fix: apt-get install -y libyaml-dev && python3 -m pip install --force-reinstall --no-binary PyYAML PyYAML"
fi

# --- the profile set
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bprof-bench.XXXXXX")
if [[ ${BENCH_KEEP:-0} == 1 ]]; then
  echo "bench: keeping $WORK" >&2
else
  trap 'rm -rf "$WORK"' EXIT
fi
case $WORK$BPROF in *"'"*|*[[:space:]]*) die "paths with spaces or quotes are not supported: $WORK, $BPROF";; esac
SET=$WORK/profiles
AZ=$WORK/azure   # an empty AZURE_CONFIG_DIR: no azureProfile.json, so plans include the login step
XDG=$WORK/xdg    # an empty XDG_CONFIG_HOME: no personal local.yaml override
mkdir -p "$SET" "$AZ" "$XDG"
export AZURE_CONFIG_DIR=$AZ XDG_CONFIG_HOME=$XDG NO_COLOR=1
unset BPROF_PROFILES BPROF_AZ

GEN=$(python3 "$REPO/bench/gen_profiles.py" "$SET")
ONE=$(sed -n 's/^sample_profile=//p' <<<"$GEN")
FILES=("$SET"/*.yaml)
BYTES=$(cat "${FILES[@]}" | wc -c)
"$BPROF" --profiles "$SET" validate >/dev/null 2>"$WORK/validate.err" \
  || { cat "$WORK/validate.err" >&2; die "the generated set does not validate"; }
"$BPROF" --profiles "$SET" plan "$ONE" --format json >/dev/null \
  || die "bprof plan $ONE failed"
"$BPROF" --profiles "$REPO/profiles" run prod-jumpbox --dry-run >/dev/null \
  || die "bprof run prod-jumpbox --dry-run failed on $REPO/profiles"

if [[ $LARGE == 1 ]]; then
  SET_L=$WORK/profiles-large
  mkdir -p "$SET_L"
  GEN_L=$(python3 "$REPO/bench/gen_profiles.py" "$SET_L" --profiles 100000 --vms 10000 \
    --bastions 500 --tenants 100 --files 200)
  ONE_L=$(sed -n 's/^sample_profile=//p' <<<"$GEN_L")
  "$BPROF" --profiles "$SET_L" validate >/dev/null 2>"$WORK/validate-large.err" \
    || { cat "$WORK/validate-large.err" >&2; die "the large generated set does not validate"; }
fi

# --- run overhead: a do-nothing az (BPROF_AZ) and a signed-in AZURE_CONFIG_DIR, so that
# `bprof run prod-app-ssh` is exactly one az process; against that az run directly with the
# same argv. Both through env(1), which sets the environment for the one row.
RUN_AZ=$WORK/az-noop
printf '#!/bin/sh\nexit 0\n' > "$RUN_AZ"
chmod +x "$RUN_AZ"
SIGNED=$WORK/azure-signed-in
mkdir -p "$SIGNED"
printf '{"subscriptions": [%s]}\n' \
  '{"id": "55555555-5555-5555-5555-555555555555", "isDefault": true}, {"id": "44444444-4444-4444-4444-444444444444", "isDefault": false}, {"id": "22222222-2222-2222-2222-222222222222", "isDefault": false}' \
  > "$SIGNED/azureProfile.json"
RUN_ENV="env AZURE_CONFIG_DIR=$SIGNED BPROF_AZ=$RUN_AZ"
RUN_ARGV=$($RUN_ENV "$BPROF" --profiles "$REPO/profiles" plan prod-app-ssh --format json \
  | python3 -c 'import json, sys; s = json.load(sys.stdin)["steps"]; assert len(s) == 1, s; print(" ".join(s[0]["argv"][1:]))') \
  || die "bprof plan prod-app-ssh failed, or is not one az step when signed in"
$RUN_ENV "$BPROF" --profiles "$REPO/profiles" run prod-app-ssh \
  || die "bprof run prod-app-ssh with a do-nothing az failed"

# --- measurements
# Each row: label, command (split by hyperfine itself, no shell: -N), extra hyperfine args.
LABELS=() CMDS=() ARGS=()
row() { LABELS+=("$1"); CMDS+=("$2"); ARGS+=("$3"); }
row "bprof --profiles DIR validate" \
    "'$BPROF' --profiles '$SET' validate" "--min-runs 20"
row "bprof --profiles DIR list" \
    "'$BPROF' --profiles '$SET' list" "--min-runs 20"
row "bprof --profiles DIR plan $ONE --format json" \
    "'$BPROF' --profiles '$SET' plan $ONE --format json" "--min-runs 30"
row "PyYAML yaml.$LOADER, parsing the same 20 files only (reference)" \
    "python3 -c 'import yaml,sys; [yaml.load(open(f), Loader=yaml.$LOADER) for f in sys.argv[1:]]' $(printf "'%s' " "${FILES[@]}")" \
    "--min-runs 20"
row "bprof --profiles profiles/ run prod-jumpbox --dry-run (bundled examples)" \
    "'$BPROF' --profiles '$REPO/profiles' run prod-jumpbox --dry-run" "--min-runs 200"
row "bprof run prod-app-ssh, az a do-nothing script (signed in: one az process)" \
    "$RUN_ENV '$BPROF' --profiles '$REPO/profiles' run prod-app-ssh" "--min-runs 200"
row "that do-nothing az alone, with the same argv (reference)" \
    "$RUN_ENV '$RUN_AZ' $RUN_ARGV" "--min-runs 200"

if [[ $LARGE == 1 ]]; then
  row "bprof --profiles DIR validate (100k set)" \
      "'$BPROF' --profiles '$SET_L' validate" "--runs 5"
  row "bprof --profiles DIR list (100k set)" \
      "'$BPROF' --profiles '$SET_L' list" "--runs 5"
  row "bprof --profiles DIR plan $ONE_L --format json (100k set)" \
      "'$BPROF' --profiles '$SET_L' plan $ONE_L --format json" "--runs 5"
fi

peak_rss_kb() { # max over 3 runs of GNU time's %M (KB); the command is split like hyperfine -N
  local max=0 kb i
  for i in 1 2 3; do
    eval "/usr/bin/time -o '$WORK/rss' -f %M $1" >/dev/null 2>&1 || die "failed: $1"
    kb=$(tail -n 1 "$WORK/rss")
    (( kb > max )) && max=$kb
  done
  echo "$max"
}

echo "bench: $(grep -E '^(files|tenants|bastions|vms|profiles)=' <<<"$GEN" | tr '\n' ' ')in $SET" >&2
echo "bench: $LOADER_NOTE" >&2
RSS=()
for i in "${!CMDS[@]}"; do
  echo >&2
  echo "bench: [$((i + 1))/${#CMDS[@]}] ${LABELS[$i]}" >&2
  # shellcheck disable=SC2086 # ARGS are word lists on purpose
  hyperfine -N --warmup 3 ${ARGS[$i]} --style basic --export-json "$WORK/h$i.json" \
    -n "${LABELS[$i]}" "${CMDS[$i]}" >&2
  RSS+=("$(peak_rss_kb "${CMDS[$i]}")")
done

# --- report
python3 - "$WORK" "$BYTES" "${#FILES[@]}" "$LOADER_NOTE" "${RSS[@]}" <<'EOF'
import json, sys
work, nbytes, nfiles, note, rss = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
print()
print("| command | mean ± σ (ms) | peak RSS (MiB) |")
print("| --- | --- | --- |")
dry = run = az = pyyaml = None
small, large = {}, {}
for i, kb in enumerate(rss):
    r = json.load(open(f"{work}/h{i}.json"))["results"][0]
    mean, sd = r["mean"] * 1000, (r["stddev"] or 0.0) * 1000
    name = r["command"]
    if name.startswith("PyYAML"):
        pyyaml = mean
    for cmd in ("validate", "list", "plan"):
        if name.startswith(f"bprof --profiles DIR {cmd}"):
            (large if "(100k set)" in name else small)[cmd] = (mean, int(kb))
    if "--dry-run" in name:
        dry = mean
    elif " run prod-app-ssh" in name:
        run = mean
    elif "do-nothing az alone" in name:
        az = mean
    print(f"| `{name}` | {mean:.1f} ± {sd:.1f} | {int(kb) / 1024:.1f} |")
print()
print(f"Generated set: {nfiles} files, {nbytes:,} bytes ({nbytes / 1048576:.2f} MiB); "
      f"10,000 profiles, 1,000 vms, 50 bastions, 10 tenants.")
print(f"Reference: {note}.")
if pyyaml:
    shares = ", ".join(f"{c} {m / pyyaml:.2f}x" for c, (m, _) in small.items())
    print(f"bprof against PyYAML merely parsing the same files: {shares} (target: at most 0.25x).")
if large:
    ratios = ", ".join(
        f"{c} {large[c][0] / small[c][0]:.1f} (RSS {large[c][1] / small[c][1]:.1f})"
        for c in large if c in small)
    print(f"100k set / 10k set, time (and peak RSS): {ratios} (linear: about 10).")
if dry is not None:
    verdict = "under" if dry < 10 else "NOT under"
    print(f"bprof on the bundled examples (run --dry-run): {dry:.1f} ms, {verdict} the 10 ms target.")
if run is not None and az is not None:
    over = run - az
    verdict = "under" if over < 10 else "NOT under"
    print(f"bprof run over its one az process: {over:.1f} ms ({run:.1f} - {az:.1f}), {verdict} the 10 ms target.")
EOF
