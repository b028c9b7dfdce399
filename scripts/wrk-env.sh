# Sourced by the load benchmarks: Debian's wrk, unpacked into the cache on
# first use (downloaded, not installed), and a `wrk` function that runs it.
# Needs $cache set.
wrk_dir="$cache/wrk"
if [[ ! -x "$wrk_dir/usr/bin/wrk" ]]; then
    echo "unpacking Debian's wrk into $wrk_dir" >&2
    wrk_download=$(mktemp -d)
    (cd "$wrk_download" && apt-get download wrk libluajit2-5.1-2 >/dev/null 2>&1) \
        || { echo "apt-get download wrk libluajit2-5.1-2 failed" >&2; exit 1; }
    mkdir -p "$wrk_dir"
    for deb in "$wrk_download"/*.deb; do dpkg -x "$deb" "$wrk_dir"; done
    rm -rf "$wrk_download"
fi
wrk_luajit=$(find "$wrk_dir" -name 'libluajit-5.1.so.2' -print -quit)
wrk() { LD_LIBRARY_PATH="$(dirname "$wrk_luajit")" "$wrk_dir/usr/bin/wrk" "$@"; }
