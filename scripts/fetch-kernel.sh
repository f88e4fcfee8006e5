#!/bin/bash
# Fetch Debian's cloud kernel and unpack it for the tests:
#   tests/.cache/kernel/bzImage   the kernel as Debian ships it (/boot/vmlinuz-*)
#   tests/.cache/kernel/vmlinux   the ELF64 inside it (scripts/extract-vmlinux.py)
#   tests/.cache/kernel/bzImage.header  its setup header, key=value (the same)
#   tests/.cache/kernel/version   e.g. 6.1.0-28-cloud-amd64
#
# linux-image-cloud-amd64 is a metapackage; the kernel itself is its
# dependency linux-image-<version>-cloud-amd64, which is what we download
# (apt-get download, no installation).
#
# Idempotent and offline-safe: with a complete cache it does nothing and
# touches no network. A .deb already in the cache is reused. `apt-get update`
# runs only when the first download attempt fails. Exit status: 0 with the
# cache complete, non-zero with a message on stderr otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="${VMM_KERNEL_CACHE:-$ROOT/tests/.cache/kernel}"
META=linux-image-cloud-amd64
PYTHON=${PYTHON:-python3}

msg() { echo "fetch-kernel: $*" >&2; }
die() { msg "error: $*"; exit 1; }

complete() {
	[ -s "$CACHE/bzImage" ] && [ -s "$CACHE/vmlinux" ] && [ -s "$CACHE/bzImage.header" ] &&
		[ -f "$CACHE/.complete" ]
}

mkdir -p "$CACHE"

# Fast path, no lock needed.
if complete; then
	exit 0
fi

# Several test runners may call us at once: serialise on a lock file.
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if complete; then
	exit 0
fi

# The package name of the real kernel, e.g. linux-image-6.1.0-28-cloud-amd64.
resolve_kernel_pkg() {
	apt-cache depends "$META" 2>/dev/null |
		sed -n 's/^ *Depends: *\(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1
}

find_deb() {
	# Newest cached kernel .deb (not the metapackage), if any.
	local f best=
	for f in "$CACHE"/linux-image-*-cloud-amd64_*.deb; do
		[ -s "$f" ] || continue
		if [ -z "$best" ] || [ "$f" -nt "$best" ]; then
			best=$f
		fi
	done
	[ -n "$best" ] && echo "$best"
	return 0
}

try_download() {
	local pkg
	pkg=$(resolve_kernel_pkg)
	if [ -z "$pkg" ]; then
		msg "cannot resolve the dependency of $META (no package lists?)"
		return 1
	fi
	msg "downloading $pkg"
	# apt-get download writes into the current directory. As root it warns
	# that the download is unsandboxed; that is expected.
	(cd "$CACHE" && apt-get download -q "$pkg") || return 1
	[ -n "$(find_deb)" ]
}

DEB=$(find_deb)
if [ -z "$DEB" ]; then
	if ! try_download; then
		msg "first download attempt failed; running apt-get update and retrying"
		if ! apt-get update -q >&2; then
			msg "apt-get update failed"
		fi
		try_download || die "could not download the kernel package for $META.
  This needs a reachable Debian mirror (apt-get download $META's dependency).
  Offline: put a linux-image-<ver>-cloud-amd64_*.deb into $CACHE and rerun."
	fi
	DEB=$(find_deb)
fi
msg "using $(basename "$DEB")"

TMP=$(mktemp -d "$CACHE/.extract.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

dpkg-deb -x "$DEB" "$TMP/root" || die "dpkg-deb -x failed on $DEB (corrupt download? delete it and rerun)"
VMLINUZ=
for f in "$TMP"/root/boot/vmlinuz-*; do
	[ -f "$f" ] && VMLINUZ=$f && break
done
[ -n "$VMLINUZ" ] || die "no /boot/vmlinuz-* in $DEB"

cp "$VMLINUZ" "$TMP/bzImage"
"$PYTHON" "$ROOT/scripts/extract-vmlinux.py" "$TMP/bzImage" "$TMP/vmlinux" ||
	die "could not extract vmlinux from $(basename "$VMLINUZ")"
# The setup header as the extractor reads it, for tests/unit/test_bzimage_real.c
# to compare with boot/bzimage.c's parser.
"$PYTHON" "$ROOT/scripts/extract-vmlinux.py" --header "$TMP/bzImage" >"$TMP/bzImage.header" ||
	die "could not read the setup header of $(basename "$VMLINUZ")"

rm -f "$CACHE/.complete"
mv -f "$TMP/bzImage" "$CACHE/bzImage"
mv -f "$TMP/vmlinux" "$CACHE/vmlinux"
mv -f "$TMP/bzImage.header" "$CACHE/bzImage.header"
basename "$VMLINUZ" | sed 's/^vmlinuz-//' >"$CACHE/version"
touch "$CACHE/.complete"
msg "ready: $CACHE/bzImage, $CACHE/vmlinux ($(cat "$CACHE/version"))"
