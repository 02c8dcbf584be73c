#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make-deb.sh O: build IDN's Debian packages (debian/, debhelper) from a
# copy of this tree in O/deb/src, without .git, as a package build from a
# tarball would; the .debs land in O/deb/. The binaries' --version is this
# checkout's (tools/version.sh, passed as $IDN_VERSION). Lintian runs on
# the result when installed (its tags go to O/deb/lintian.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
O=${1:-build}
case $O in /*) ;; *) O=$PWD/$O ;; esac
out=$O/deb
src=$out/src/idn
rm -rf "$out"
mkdir -p "$src"
if [ -e .git ] && command -v git >/dev/null; then
	git ls-files -z -co --exclude-standard | grep -zv '^build/' | tar -c --null -T - -f - | tar -x -C "$src"
else
	tar -c --exclude=./build --exclude="./${O#$PWD/}" -f - . | tar -x -C "$src"
fi
IDN_VERSION=$(tools/version.sh)
export IDN_VERSION
echo "make-deb: idn $IDN_VERSION in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc -j"${IDN_DEB_JOBS:-2}") > "$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "make-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
}
mv "$out"/src/*.deb "$out"/
rm -f "$out"/src/*.buildinfo "$out"/src/*.changes
ls "$out"/*.deb
if command -v lintian >/dev/null; then
	lintian --info --suppress-tags-from-file /dev/null "$out"/*.deb > "$out/lintian.txt" 2>&1 || true
	n=$(grep -cE '^[EW]: ' "$out/lintian.txt" || true)
	echo "make-deb: lintian: $n errors/warnings ($out/lintian.txt)"
fi
