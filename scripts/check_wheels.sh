#!/usr/bin/env bash
# Check that the Jetson install resolves to wheels only: the package's dependencies plus its
# `runtime` and `jetson` extras, for aarch64 with JetPack 6's glibc (2.35), on Python 3.10 (JetPack 6's) and 3.12.
# A dependency that loses its aarch64 wheel (or a bound that only a source archive meets) makes
# this exit non-zero. Needs the package index; nothing is installed (pip --dry-run).
#
# usage: scripts/check_wheels.sh                 check the jetson install from pyproject.toml
#        scripts/check_wheels.sh --only SPEC...  check these requirement specs instead
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--only" ]; then
    shift
    specs=("$@")
else
    # tomllib needs Python 3.11 here (the machine running the check, not the target)
    mapfile -t specs < <(python3 - <<'EOF'
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
for spec in dict.fromkeys(project["dependencies"] + extras["runtime"] + extras["jetson"]):
    print(spec)
EOF
)
fi
[ "${#specs[@]}" -gt 0 ] || { echo "check_wheels: no requirement to check" >&2; exit 2; }

# pip does not widen --platform to older manylinux tags: name every glibc up to JetPack 6's.
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 35); do
    platforms+=(--platform "manylinux_2_${minor}_aarch64")
done

target="$(mktemp -d)"
trap 'rm -rf "$target"' EXIT
status=0
for python in 3.10 3.12; do
    if python3 -m pip install --dry-run --quiet --only-binary=:all: "${platforms[@]}" \
        --python-version "$python" --target "$target" --report "$target/report.json" "${specs[@]}" \
        2> "$target/pip.err"; then
        count=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["install"]))' \
            "$target/report.json")
        echo "aarch64 wheels, Python $python: ok ($count packages)"
    else
        echo "aarch64 wheels, Python $python: FAILED" >&2
        grep -v '^WARNING: Location' "$target/pip.err" | tail -n 5 >&2
        status=1
    fi
done
exit "$status"
