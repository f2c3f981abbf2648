#!/usr/bin/env bash
# Installs the Debian 12 packages bitmill needs to build, run and test.
# Idempotent: packages already present are skipped, so a second run costs
# one dpkg query. Usage: scripts/install-deps.sh [build|test]
set -euo pipefail

build_packages=(
    build-essential cmake ninja-build pkg-config
    libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
    libsqlite3-dev libcurl4-openssl-dev libssl-dev
    libavformat-dev libavcodec-dev libavfilter-dev libavutil-dev
    libswscale-dev libswresample-dev libvips-dev
)

# The tests also use the ffmpeg and vips command-line tools to inspect outputs
# independently of bitmill's own probe, and the corpus generator needs the rest.
test_packages=(
    libgtest-dev libgmock-dev curl ffmpeg libvips-tools imagemagick
    libimage-exiftool-perl sox espeak-ng libheif-examples gsfonts ghostscript
)

mode=${1:-build}
wanted=("${build_packages[@]}")
if [[ $mode == test ]]; then
    wanted+=("${test_packages[@]}")
fi

missing=()
for package in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
