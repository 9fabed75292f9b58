#!/usr/bin/env bash
# The OSU 0.18 um standard-cell library for `bnnhw asic`, from Debian's qflow-tech-osu018
# package, extracted (not installed: installing it pulls in all of qflow) into
# ${BNNHW_OSU018:-~/.cache/bnnhw/osu018}: osu018_stdcells.lib, .lef and .v (cell models).
set -euo pipefail
dest="${BNNHW_OSU018:-${XDG_CACHE_HOME:-$HOME/.cache}/bnnhw/osu018}"
if [ -f "$dest/osu018_stdcells.lib" ]; then
    echo "OSU 0.18 um library already in $dest"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download qflow-tech-osu018 >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$work" && apt-get download qflow-tech-osu018)
}
dpkg -x "$work"/qflow-tech-osu018_*.deb "$work/x"
mkdir -p "$dest"
cp "$work"/x/usr/share/qflow/tech/osu018/osu018_stdcells.* "$dest"/
echo "OSU 0.18 um library in $dest"
