#!/usr/bin/env bash
# Install st3d-edge for training, evaluation, the peer baseline and the CPU edge runtime into the
# active Python.
#
# - torch is pinned first, as the package index serves it: on an ordinary Linux x86_64 machine
#   that is the CUDA build (what a GPU workstation wants). A CPU-only machine installs the CPU
#   build of the same version from PyTorch's CPU wheel index before running this; pip keeps it.
# - Open3D (used only by the geometry-only peer baseline) needs the system library libusb;
#   it is installed with apt-get when this runs as root on a Debian/Ubuntu machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null
    else
        echo "note: libusb-1.0-0 is missing; install it (e.g. apt-get install libusb-1.0-0) for the Open3D baseline" >&2
    fi
fi

python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[train,baseline,runtime,dev]"
