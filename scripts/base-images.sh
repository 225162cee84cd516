#!/usr/bin/env bash
# Build batchkit's local base images without any registry, once (an existing image is kept):
#
#   scripts/base-images.sh                  both images
#   scripts/base-images.sh busybox          batchkit-base/busybox:latest  (Debian busybox-static, ~2 MB, seconds)
#   scripts/base-images.sh debian           batchkit-base/debian:bookworm (debootstrap minbase + bash + python3, minutes)
#   scripts/base-images.sh --force debian   rebuild even if the image exists
#
# They are what locally built Dockerfiles take as BASE_IMAGE. Talks to the engine at $DOCKER_HOST
# (or the default socket) with the docker CLI. Packages come from the Debian mirror apt already
# uses. Quiet for cached images; one progress line for each image it builds; a log tail on failure.
# Every step is bounded, in seconds: BATCHKIT_DEBOOTSTRAP_TIMEOUT (default 1200), each apt-get step
# and each import (600), waiting for another build of the same images (1200).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK="$REPO/.ci-work/base-images"
BUSYBOX_IMAGE=batchkit-base/busybox:latest
DEBIAN_IMAGE=batchkit-base/debian:bookworm
DEBIAN_SUITE=bookworm
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "base-images.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

image_exists() { timeout 60 docker image inspect "$1" >/dev/null 2>&1; }

# bounded SECONDS COMMAND...: COMMAND, killed when it overruns (exit status 124 or 137).
bounded() {
    local seconds=$1
    shift
    timeout --kill-after=30 "$seconds" "$@"
}

overran() { [ "$1" = 124 ] || [ "$1" = 137 ]; }

apt_install() {
    [ "$(id -u)" = 0 ] || die "need the Debian package(s) $*; install them (we are not root)"
    local log="$WORK/apt.log" status=0
    export DEBIAN_FRONTEND=noninteractive
    { bounded 600 apt-get -o DPkg::Lock::Timeout=300 -o Acquire::http::Timeout=60 update &&
        bounded 600 apt-get -o DPkg::Lock::Timeout=300 -o Acquire::http::Timeout=60 install \
            -y -q --no-install-recommends "$@"; } >"$log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        tail -n 20 "$log" >&2
        overran "$status" && die "apt-get install $* did not finish within 600s (mirror unreachable?)"
        die "apt-get install $* failed"
    fi
}

# Pack a root filesystem directory into an image owned by root, with the given --change lines.
import_rootfs() {
    local rootfs=$1 image=$2
    shift 2
    local changes=() c
    for c in "$@"; do changes+=(--change "$c"); done
    tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . |
        bounded 600 docker import "${changes[@]}" - "$image" >/dev/null ||
        die "docker import of $image failed or took over 600s"
}

# The static busybox binary: the installed busybox-static's, else installed now (as root), else
# unpacked from a downloaded .deb without touching the system.
static_busybox() {
    if dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
        echo /bin/busybox
        return
    fi
    if [ "$(id -u)" = 0 ] && ! dpkg-query -W -f '${Status}' busybox 2>/dev/null | grep -q 'install ok installed'; then
        apt_install busybox-static
        echo /bin/busybox
        return
    fi
    local deb="$WORK/busybox-deb"
    rm -rf "$deb" && mkdir -p "$deb"
    (cd "$deb" && bounded 600 apt-get download -q busybox-static >/dev/null 2>&1) ||
        die "cannot get Debian's busybox-static (apt-get download busybox-static failed)"
    dpkg-deb -x "$deb"/busybox-static_*.deb "$deb/x"
    echo "$deb/x/bin/busybox"
}

build_busybox() {
    local busybox rootfs="$WORK/busybox-rootfs" applet
    busybox=$(static_busybox)
    rm -rf "$rootfs"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,proc,sys,dev,tmp,var/tmp}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    cp "$busybox" "$rootfs/bin/busybox"
    chmod 0755 "$rootfs/bin/busybox"
    # Every applet as a symlink, /bin/sh included (busybox --list-full prints paths like usr/bin/nc).
    while read -r applet; do
        [ -n "$applet" ] && [ ! -e "$rootfs/$applet" ] && ln -s /bin/busybox "$rootfs/$applet"
    done < <("$rootfs/bin/busybox" --list-full)
    [ -e "$rootfs/bin/sh" ] || ln -s /bin/busybox "$rootfs/bin/sh"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    import_rootfs "$rootfs" "$BUSYBOX_IMAGE" \
        "ENV PATH=$IMAGE_PATH" 'CMD ["/bin/sh"]' 'LABEL batchkit.base=busybox'
    rm -rf "$rootfs"
}

# The Debian mirror apt uses for the suite: deb822 *.sources first, then one-line *.list entries.
debian_mirror() {
    local f mirror=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        mirror=$(awk -v suite="$DEBIAN_SUITE" '
            function flush() { if (uri != "" && (" " suites " ") ~ (" " suite " ") && types ~ /(^| )deb( |$)/) { print uri; found = 1; exit } uri = ""; suites = ""; types = "" }
            /^[ \t]*$/ { flush(); next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { $1 = ""; suites = $0 }
            /^Types:/ { $1 = ""; types = $0 }
            END { if (!found) flush() }' "$f")
        [ -n "$mirror" ] && break
    done
    if [ -z "$mirror" ]; then
        mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk -v suite="$DEBIAN_SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }')
    fi
    echo "${mirror:-http://deb.debian.org/debian}"
}

build_debian() {
    [ "$(id -u)" = 0 ] || die "debootstrap needs root to build $DEBIAN_IMAGE"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local mirror rootfs="$WORK/debian-rootfs" log="$WORK/debootstrap.log" status=0
    local bound=${BATCHKIT_DEBOOTSTRAP_TIMEOUT:-1200} started=$SECONDS
    mirror=$(debian_mirror)
    say "building $DEBIAN_IMAGE with debootstrap from $mirror (a few minutes, at most ${bound}s; log: $log)"
    rm -rf "$rootfs"
    bounded "$bound" debootstrap --variant=minbase --include=bash,python3 "$DEBIAN_SUITE" \
        "$rootfs" "$mirror" >"$log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        tail -n 20 "$log" >&2
        rm -rf "$rootfs"
        overran "$status" && die "debootstrap of $DEBIAN_IMAGE did not finish within ${bound}s"
        die "debootstrap failed for $DEBIAN_IMAGE"
    fi
    say "debootstrap took $((SECONDS - started))s"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
    say "importing $DEBIAN_IMAGE"
    import_rootfs "$rootfs" "$DEBIAN_IMAGE" \
        "ENV PATH=$IMAGE_PATH" 'ENV LANG=C.UTF-8' 'CMD ["/bin/bash"]' 'LABEL batchkit.base=debian'
    rm -rf "$rootfs"
    say "built $DEBIAN_IMAGE"
}

main() {
    local force=0 wanted=() name
    for name in "$@"; do
        case $name in
            --force) force=1 ;;
            busybox | debian) wanted+=("$name") ;;
            -h | --help)
                sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
                return 0
                ;;
            *) die "unknown image '$name' (known: busybox, debian)" ;;
        esac
    done
    [ ${#wanted[@]} -gt 0 ] || wanted=(busybox debian)
    command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed"
    timeout 30 docker version >/dev/null 2>&1 ||
        die "no Docker engine answers at ${DOCKER_HOST:-the default socket} (source scripts/dockerd.sh; docker_engine_up)"
    mkdir -p "$WORK"
    # One builder at a time; a second caller waits and then finds the images cached.
    exec 9>"$WORK/.lock"
    flock -w 1200 9 || die "another base-images.sh has held $WORK/.lock for 20 minutes"
    for name in "${wanted[@]}"; do
        case $name in
            busybox) image=$BUSYBOX_IMAGE ;;
            debian) image=$DEBIAN_IMAGE ;;
        esac
        if [ "$force" = 0 ] && image_exists "$image"; then
            continue
        fi
        "build_$name"
    done
}

main "$@"
