#!/usr/bin/env bash
# `make pi-check`: the device runtime on arm64 Debian bookworm (the base of 64-bit Raspberry Pi OS),
# run under qemu-user on this machine, compared with the same checks run here on x86.
#
#  1. qemu-user-static, binfmt-support and debootstrap (Debian packages); the qemu-aarch64 binfmt
#     handler registered; an arm64 bookworm root built once with debootstrap (~6 min) and reused.
#  2. The wheel `make dist` built, and every aarch64 wheel of edgedigits[runtime], downloaded here
#     (pip download --platform ...aarch64 --only-binary=:all:), installed in a fresh venv in the
#     root with --no-index (pip in the root does not reach the registry).
#  3. pi/probe.py in the root and here: classifier parity on 1,000 MNIST test digits (every shipped
#     file in every backend), eval-paper on paper and paper-hard, the camera on a video made of
#     the paper photos, the import check. pi/report.py compares them and writes docs/raspberry-pi.md.
#
# Must run as root (debootstrap, chroot). Cache: $PI_CACHE (default ~/.cache/edgedigits/pi).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${PI_CACHE:-$HOME/.cache/edgedigits/pi}
MIRROR=${PI_MIRROR:-http://deb.debian.org/debian}
ROOT=$CACHE/root-arm64-bookworm
WORK=$ROOT/check                 # this run's wheels, data and results, inside the root
PY=.venv/bin/python
PAPER=${PI_PAPER:-../shared/data}     # paper/ and paper-hard/ (photos + labels.csv)
export EDGEDIGITS_DATA=${EDGEDIGITS_DATA:-$PWD/../shared/data/mnist}   # as in the Makefile
# Several manylinux tags: ai-edge-litert and numpy ship manylinux_2_27/2_28 aarch64 wheels,
# OpenCV manylinux2014 (= 2_17); bookworm's glibc 2.36 runs them all.
PLATFORMS=(--platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64
           --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64)
T0=$(date +%s)
say() { printf '[pi-check %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
secs() { echo $(( $(date +%s) - $1 )); }

[ "$(id -u)" = 0 ] || { echo "pi-check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
wheel=$(ls dist/edgedigits-*-py3-none-any.whl 2>/dev/null | tail -1)
[ -n "$wheel" ] || { echo "pi-check: no wheel in dist/: run make dist first" >&2; exit 2; }

# --- 1. qemu, binfmt, the root ------------------------------------------------------------------
if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
    say "installing qemu-user-static binfmt-support debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-user-static binfmt-support debootstrap >/dev/null
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
root_s=0
if [ ! -e "$ROOT/.complete" ]; then
    say "building the arm64 bookworm root with debootstrap (once; about 6 minutes)"
    t=$(date +%s)
    rm -rf "$ROOT.tmp" && mkdir -p "$CACHE"
    nice -n 10 debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv \
        bookworm "$ROOT.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }
    touch "$ROOT.tmp/.complete" && mv "$ROOT.tmp" "$ROOT"
    root_s=$(secs "$t")
fi
chroot "$ROOT" /bin/true || { echo "pi-check: cannot run arm64 programs (binfmt qemu-aarch64)" >&2; exit 1; }
# /proc (unmounted on exit), but not /sys: this host's sysfs describes x86 CPUs, and onnxruntime's
# cpuinfo crashes on it under qemu (without it, it warns "failed to parse the list of possible
# processors" and runs; on a Pi, /sys is the Pi's own).
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT
say "root ready: $(chroot "$ROOT" uname -m), $(chroot "$ROOT" python3 --version)"

# --- 2. wheels ----------------------------------------------------------------------------------
rm -rf "$WORK" && mkdir -p "$WORK/wheels" "$WORK/data" "$CACHE/wheels"
t=$(date +%s)
$PY -m pip download -q -d "$CACHE/wheels" --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 "${PLATFORMS[@]}" "edgedigits[runtime] @ file://$PWD/$wheel" 2>&1 | grep -v "^WARNING: Location" || true
download_s=$(secs "$t")
cp "$wheel" "$WORK/wheels/"
find "$CACHE/wheels" -name '*.whl' ! -name 'edgedigits-*' -exec cp {} "$WORK/wheels/" \;

# --- 3. data: 1,000 MNIST test digits, the photos, a video of the photos ------------------------
$PY pi/probe.py --prepare "$WORK/data" --paper "$PAPER"
cp pi/probe.py "$WORK/"

# --- 4. install in the root; meanwhile the same wheel in an x86 venv, and the x86 probe ----------
say "installing $(basename "$wheel")[runtime] in the root (--no-index); the same wheel on x86 meanwhile"
t=$(date +%s)
X86=$CACHE/x86-venv
( rm -rf "$X86" && $PY -m venv "$X86" && "$X86/bin/pip" install -q "$wheel[runtime]" \
  && cd "$WORK" && nice -n 10 "$X86/bin/python" probe.py x86 --data data ) >"$WORK/x86.log" 2>&1 &
# (run from $WORK: `python -m edgedigits.cli` in the repo would import the repo's edgedigits/ folder)
x86=$!
IN_ROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8)
nice -n 10 "${IN_ROOT[@]}" python3 -m venv /check/venv
nice -n 10 "${IN_ROOT[@]}" /check/venv/bin/pip install -q --no-index --find-links /check/wheels \
    --no-compile "/check/wheels/$(basename "$wheel")[runtime]"
install_s=$(secs "$t")
wait $x86 || { cat "$WORK/x86.log" >&2; exit 1; }

# --- 5. the probe on arm64 ----------------------------------------------------------------------
say "probing on arm64 under qemu (parity, eval-paper x2, camera, imports; in parallel)"
t=$(date +%s)
nice -n 10 "${IN_ROOT[@]}" sh -c 'cd /check && /check/venv/bin/python probe.py /check/arm --data /check/data'
probe_s=$(secs "$t")

# --- 6. compare, report -------------------------------------------------------------------------
$PY pi/report.py --x86 "$WORK/x86" --arm "$WORK/arm" --wheel "$wheel" --doc docs/raspberry-pi.md \
    --root "$(chroot "$ROOT" sh -c '. /etc/os-release; echo "$PRETTY_NAME"'), $(chroot "$ROOT" uname -m)" \
    --timings "root=$root_s download=$download_s install=$install_s probe_arm64=$probe_s total=$(secs "$T0")"
