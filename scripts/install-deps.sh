#!/usr/bin/env bash
# Installs the Debian 12 packages bitmill needs to build, run and test.
# Idempotent: packages already present are skipped, so a second run costs
# one dpkg query. Usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail

build_packages=(
    build-essential cmake ninja-build pkg-config
    libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
    libsqlite3-dev libpq-dev libcurl4-openssl-dev libssl-dev
    libavformat-dev libavcodec-dev libavfilter-dev libavutil-dev
    libswscale-dev libswresample-dev libvips-dev
)

# The tests also use the ffmpeg and vips command-line tools to inspect outputs
# independently of bitmill's own probe, and the corpus generator needs the rest.
test_packages=(
    libgtest-dev libgmock-dev curl ffmpeg libvips-tools imagemagick
    libimage-exiftool-perl sox espeak-ng libheif-examples gsfonts ghostscript
    postgresql openssl iproute2
)
# The S3 test server (tests/services/s3.sh) is s3rver, a Node.js program
# installed with npm. Debian's npm package conflicts with nodejs builds that
# bundle npm (NodeSource's), so it is only added when the command is missing.
test_packages+=(nodejs)
if ! command -v npm >/dev/null; then
    test_packages+=(npm)
fi

# bench/run.sh (and its quick run among the tests): the baselines it measures
# bitmill against, and GNU time for their peak memory.
bench_packages=(
    ffmpeg libvips-tools imagemagick nginx wrk time python3
)

mode=${1:-build}
wanted=("${build_packages[@]}")
if [[ $mode == test ]]; then
    wanted+=("${test_packages[@]}")
fi
if [[ $mode == test || $mode == bench ]]; then
    wanted+=("${bench_packages[@]}")
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
