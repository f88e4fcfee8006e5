#!/usr/bin/env bash
# Install the Debian packages vmm needs to build, test and bench, and only
# those that are missing. Run by `make run` and `make test`.
set -euo pipefail

packages=(
	gcc make binutils libc6-dev linux-libc-dev pkg-config  # build
	libjansson-dev liburing-dev libseccomp-dev libcap-ng-dev  # runtime libraries
	libcmocka-dev python3 python3-pytest clang libclang-rt-14-dev  # tests, fuzzing
	qemu-system-x86 iproute2 xz-utils zstd  # the bench peer, netns tests, kernel payloads
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing missing packages: ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
