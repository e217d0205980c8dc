#!/usr/bin/env bash
# Installs what the build and the test suite need on a Debian 12 machine, skipping what is
# already there. Run as root (CI is); as another user it only reports what is missing.
set -euo pipefail

pkgs=(libelf-dev zlib1g-dev clang pkg-config sip-tester iproute2 ethtool tcpdump)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found: install a Rust toolchain >= 1.85 (rustup) first" >&2
  exit 1
fi
echo "install-deps: ok (${pkgs[*]} present; $(cargo --version))"
