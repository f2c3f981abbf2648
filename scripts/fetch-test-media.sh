#!/usr/bin/env bash
# Copies a few real media files out of Debian 12 packages into DEST for the
# end-to-end tests (tests/e2e/real_media_test.cc): a phone video and phone
# JPEGs, a 6-channel AAC clip, camera footage, one clip in many containers and
# speech WAVs. Uses `apt-get download` and `dpkg-deb -x`, so no root is needed
# and nothing is installed.
#
# Usage: scripts/fetch-test-media.sh DEST
# Idempotent: a package is downloaded only when one of its files is missing
# from DEST. Packages larger than 200 MB are skipped. Exits 1 when a file
# could not be provided (the tests that need it then skip). When apt-cache
# finds none of the packages, run `apt-get update` first.
# DEST/SOURCES.tsv records the package, version, path and licence of each file.

set -euo pipefail
export LC_ALL=C.UTF-8

dest=${1:?usage: $0 DEST}
max_package_bytes=$((200 * 1024 * 1024))

# package|path inside the package|path below DEST
files=(
    "forensics-samples-files|usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4|forensics/VID_20191220_170832.mp4"
    "forensics-samples-files|usr/share/forensics-samples/original-files/pic2/IMG_20200124_231153.jpg|forensics/IMG_20200124_231153.jpg"
    "forensics-samples-files|usr/share/forensics-samples/original-files/pic1/IMG_20200827_231612.jpg|forensics/IMG_20200827_231612.jpg"
    "janus-demos|usr/share/janus/demos/surround/ChID-BLITS-EBU.mp4|janus/ChID-BLITS-EBU.mp4"
    "python3-mecavideo|usr/share/pymecavideo/data/video/balle-jbart.mp4|mecavideo/balle-jbart.mp4"
    "python3-mecavideo|usr/share/pymecavideo/data/video/Force_constante.avi|mecavideo/Force_constante.avi"
    "python3-mecavideo|usr/share/pymecavideo/data/video/balle1-vp9.avi|mecavideo/balle1-vp9.avi"
    "python3-mecavideo|usr/share/pymecavideo/data/video/Effet_force_magnetique.ogv|mecavideo/Effet_force_magnetique.ogv"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/mp4.mp4|mimetype/mp4.mp4"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/mov.mov|mimetype/mov.mov"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/webm.webm|mimetype/webm.webm"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/asf.asf|mimetype/asf.asf"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/flv.flv|mimetype/flv.flv"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/mkv.mkv|mimetype/mkv.mkv"
    "golang-github-gabriel-vasile-mimetype-dev|usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata/3gp.3gp|mimetype/3gp.3gp"
    "pocketsphinx-testdata|usr/share/pocketsphinx/test/data/cards/001.wav|pocketsphinx/001.wav"
    "pocketsphinx-testdata|usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav|pocketsphinx/sense_and_sensibility_01_austen_64kb-0870.wav"
)

for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || { echo "fetch-test-media: missing tool: $tool" >&2; exit 2; }
done

mkdir -p -- "$dest"
dest=$(cd -- "$dest" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fetch-test-media.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
# apt-get download runs as the _apt user when started by root; it has to be
# able to write here.
chmod 755 "$work"

sources="$dest/SOURCES.tsv"
[[ -s $sources ]] || printf 'file\tpackage\tversion\tpath in package\tlicence\n' > "$sources"

# Prints the packages in first-seen order.
packages() {
    local entry seen=" "
    for entry in "${files[@]}"; do
        local package=${entry%%|*}
        if [[ $seen != *" $package "* ]]; then
            seen+="$package "
            echo "$package"
        fi
    done
}

missing_files_of() {
    local package=$1 entry
    for entry in "${files[@]}"; do
        IFS='|' read -r owner _ target <<< "$entry"
        if [[ $owner == "$package" && ! -s $dest/$target ]]; then
            echo "$target"
        fi
    done
}

fetch_package() {
    local package=$1 size version deb tree licence
    size=$(apt-cache show --no-all-versions "$package" 2>/dev/null | awk '/^Size:/ { print $2; exit }')
    if [[ -z $size ]]; then
        echo "fetch-test-media: apt-cache does not know $package (run apt-get update first)" >&2
        return 1
    fi
    if (( size > max_package_bytes )); then
        echo "fetch-test-media: skipping $package: $((size / 1024 / 1024)) MB is over the 200 MB limit" >&2
        return 1
    fi
    echo "fetch-test-media: downloading $package ($((size / 1024)) KiB)" >&2
    if ! (cd "$work" && apt-get download -q "$package" >/dev/null 2>"$work/$package.log"); then
        echo "fetch-test-media: apt-get download $package failed:" >&2
        cat "$work/$package.log" >&2
        return 1
    fi
    deb=$(ls "$work/${package}"_*.deb 2>/dev/null | head -n 1)
    tree="$work/$package"
    dpkg-deb -x "$deb" "$tree"
    version=$(dpkg-deb -f "$deb" Version)
    licence=$(grep -m 1 '^License:' "$tree/usr/share/doc/$package/copyright" 2>/dev/null |
        sed 's/^License:[[:space:]]*//' || true)

    local entry owner member target
    for entry in "${files[@]}"; do
        IFS='|' read -r owner member target <<< "$entry"
        [[ $owner == "$package" && ! -s $dest/$target ]] || continue
        if [[ ! -s $tree/$member ]]; then
            echo "fetch-test-media: $package $version has no $member" >&2
            continue
        fi
        mkdir -p -- "$(dirname -- "$dest/$target")"
        cp -- "$tree/$member" "$dest/$target.partial"
        mv -f -- "$dest/$target.partial" "$dest/$target"
        printf '%s\t%s\t%s\t/%s\t%s\n' "$target" "$package" "$version" "$member" \
            "${licence:-see /usr/share/doc/$package/copyright}" >> "$sources"
        echo "fetch-test-media: copied $target" >&2
    done
    rm -rf -- "$tree" "$deb"
}

status=0
while read -r package; do
    if [[ -z $(missing_files_of "$package") ]]; then
        continue
    fi
    fetch_package "$package" || status=1
done < <(packages)

missing=()
for entry in "${files[@]}"; do
    IFS='|' read -r _ _ target <<< "$entry"
    [[ -s $dest/$target ]] || missing+=("$target")
done
if (( ${#missing[@]} > 0 )); then
    printf 'fetch-test-media: still missing: %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "fetch-test-media: all ${#files[@]} files present in $dest" >&2
exit "$status"
