# shellcheck shell=bash
# A local Docker engine for the container tests. Sourced, not run:
#
#   source scripts/dockerd.sh
#   docker_engine_up      # reuse an engine that answers, or install docker.io and start one
#   ...                   # DOCKER_HOST is exported; batchkit-base/* images exist
#   docker_engine_down    # stops only the dockerd this shell started (also runs on EXIT)
#
# The engine we start has no bridge, no iptables rules and no masquerading: containers get host
# networking only, so job traffic stays on 127.0.0.1. Its state lives under <repo>/.ci-work/.
# Quiet unless something fails. Environment knobs:
#   BATCHKIT_BASE_IMAGES   which base images to build after the engine is up
#                          (default "busybox debian"; "busybox" skips the minutes-long debootstrap)
#   BATCHKIT_DOCKERD_WAIT  seconds to wait for a started dockerd to answer (default 60)
#   BATCHKIT_APT_TIMEOUT   seconds for each apt-get step installing docker.io (default 600)
#   BATCHKIT_BASE_IMAGES_TIMEOUT  seconds for building the base images (default 1500; the
#                          debootstrap inside has its own bound, see scripts/base-images.sh)
#   BATCHKIT_DOCKERD_STORAGE_DRIVER  force a storage driver (default: overlay2 when the kernel can
#                          mount an overlay on the data root, else vfs)

_BK_DOCKERD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_BK_DOCKERD_WORK="$_BK_DOCKERD_REPO/.ci-work"
_BK_DOCKERD_SOCK="$_BK_DOCKERD_WORK/docker.sock"
_BK_DOCKERD_PIDFILE="$_BK_DOCKERD_WORK/docker.pid"
_BK_DOCKERD_LOG="$_BK_DOCKERD_WORK/dockerd.log"
_BK_DOCKERD_PID=""

# True when a Docker engine answers at the given endpoint (unix://... or tcp://127.0.0.1:...).
_bk_engine_answers() {
    local host=$1
    if command -v docker >/dev/null 2>&1; then
        timeout 10 docker -H "$host" version --format '{{.Server.Version}}' >/dev/null 2>&1
        return
    fi
    case $host in
        unix://*)
            command -v curl >/dev/null 2>&1 &&
                timeout 10 curl -fsS --unix-socket "${host#unix://}" http://localhost/_ping >/dev/null 2>&1
            ;;
        *) return 1 ;;
    esac
}

# Prints the first endpoint that answers: $DOCKER_HOST, the default socket, then ours.
_bk_find_engine() {
    local host
    for host in "${DOCKER_HOST:-}" "unix:///var/run/docker.sock" "unix://$_BK_DOCKERD_SOCK"; do
        [ -n "$host" ] || continue
        if _bk_engine_answers "$host"; then
            echo "$host"
            return 0
        fi
    done
    return 1
}

_bk_install_docker() {
    if command -v dockerd >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "dockerd.sh: dockerd is not installed and we are not root (install docker.io)" >&2
        return 1
    fi
    echo "dockerd.sh: installing docker.io with apt-get" >&2
    local out status=0 bound=${BATCHKIT_APT_TIMEOUT:-600}
    out=$(_bk_apt "$bound" update 2>&1 &&
        _bk_apt "$bound" install -y -q --no-install-recommends docker.io 2>&1) || status=$?
    if [ "$status" != 0 ]; then
        echo "$out" | tail -n 20 >&2
        if [ "$status" = 124 ] || [ "$status" = 137 ]; then
            echo "dockerd.sh: apt-get did not finish within ${bound}s (mirror unreachable?)" >&2
        else
            echo "dockerd.sh: apt-get install docker.io failed" >&2
        fi
        return 1
    fi
    command -v dockerd >/dev/null 2>&1
}

# apt-get, bounded: waits up to 300 s for the dpkg lock, then `seconds` in all.
_bk_apt() {
    local seconds=$1
    shift
    DEBIAN_FRONTEND=noninteractive timeout --kill-after=30 "$seconds" \
        apt-get -o DPkg::Lock::Timeout=300 -o Acquire::http::Timeout=60 "$@"
}

# overlay2 when the kernel can mount an overlay on the data root's filesystem, else vfs.
_bk_storage_driver() {
    local probe="$_BK_DOCKERD_WORK/overlay-probe" driver=vfs
    if grep -qw overlay /proc/filesystems 2>/dev/null; then
        rm -rf "$probe"
        mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
        if mount -t overlay overlay \
            -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
            "$probe/merged" 2>/dev/null; then
            umount "$probe/merged" 2>/dev/null || true
            driver=overlay2
        fi
        rm -rf "$probe"
    fi
    echo "$driver"
}

# Chains docker_engine_down onto whatever EXIT trap the sourcing shell already has.
_bk_register_exit_trap() {
    local previous
    previous=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
    # The earlier trap still sees the script's exit status in $?.
    # shellcheck disable=SC2064,SC2154
    trap "_bk_status=\$?; docker_engine_down; (exit \"\$_bk_status\"); ${previous:-:}" EXIT
}

_bk_start_dockerd() {
    local driver wait_s=${BATCHKIT_DOCKERD_WAIT:-60} i
    mkdir -p "$_BK_DOCKERD_WORK/docker" "$_BK_DOCKERD_WORK/docker-exec"
    driver=${BATCHKIT_DOCKERD_STORAGE_DRIVER:-$(_bk_storage_driver)}
    # A dockerd killed with -9 leaves its socket and pidfile behind; dockerd refuses a live pidfile
    # itself, so removing a stale one is safe once nothing answers on the socket.
    if [ -f "$_BK_DOCKERD_PIDFILE" ] && ! kill -0 "$(cat "$_BK_DOCKERD_PIDFILE")" 2>/dev/null; then
        rm -f "$_BK_DOCKERD_PIDFILE" "$_BK_DOCKERD_SOCK"
    fi
    dockerd \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
        --storage-driver="$driver" \
        --data-root "$_BK_DOCKERD_WORK/docker" \
        --exec-root "$_BK_DOCKERD_WORK/docker-exec" \
        --host "unix://$_BK_DOCKERD_SOCK" \
        --pidfile "$_BK_DOCKERD_PIDFILE" \
        >"$_BK_DOCKERD_LOG" 2>&1 </dev/null &
    _BK_DOCKERD_PID=$!
    _bk_register_exit_trap
    for ((i = 0; i < wait_s * 4; i++)); do
        if _bk_engine_answers "unix://$_BK_DOCKERD_SOCK"; then
            return 0
        fi
        if ! kill -0 "$_BK_DOCKERD_PID" 2>/dev/null; then
            break
        fi
        sleep 0.25
    done
    echo "dockerd.sh: dockerd ($driver) did not answer within ${wait_s}s; last lines of $_BK_DOCKERD_LOG:" >&2
    tail -n 15 "$_BK_DOCKERD_LOG" >&2
    docker_engine_down
    return 1
}

# Reuses an answering engine or starts ours; exports DOCKER_HOST; builds the base images.
docker_engine_up() {
    local host
    if host=$(_bk_find_engine); then
        export DOCKER_HOST=$host
    else
        _bk_install_docker || return 1
        _bk_start_dockerd || return 1
        export DOCKER_HOST="unix://$_BK_DOCKERD_SOCK"
    fi
    local images=${BATCHKIT_BASE_IMAGES-busybox debian} bound=${BATCHKIT_BASE_IMAGES_TIMEOUT:-1500}
    local status=0
    if [ -n "$images" ]; then
        # shellcheck disable=SC2086
        timeout --kill-after=30 "$bound" "$_BK_DOCKERD_REPO/scripts/base-images.sh" $images ||
            status=$?
        if [ "$status" = 124 ] || [ "$status" = 137 ]; then
            echo "dockerd.sh: the base images were not built within ${bound}s; stopped" >&2
        fi
        if [ "$status" != 0 ]; then
            echo "dockerd.sh: some base images could not be built; tests needing them will skip" >&2
        fi
    fi
    return 0
}

# Stops the dockerd this shell started (by its PID), waiting for it to exit. No-op otherwise.
docker_engine_down() {
    local pid=$_BK_DOCKERD_PID i
    [ -n "$pid" ] || return 0
    _BK_DOCKERD_PID=""
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 120; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "dockerd.sh: dockerd $pid ignored SIGTERM for 30s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    # dockerd leaves mounts behind (its bind mount of the host's network namespace, at least);
    # with it gone nothing uses them: unmount everything under our work dir, deepest first.
    local mounted
    awk -v root="$_BK_DOCKERD_WORK/" 'index($2, root) == 1 { print length($2) " " $2 }' \
        /proc/self/mounts 2>/dev/null | sort -rn | cut -d' ' -f2- |
        while read -r mounted; do
            umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true
        done
    if [ "${DOCKER_HOST:-}" = "unix://$_BK_DOCKERD_SOCK" ]; then
        unset DOCKER_HOST
    fi
    return 0
}
