#!/usr/bin/env bash
# Builds target/dist/secsip-<version>-<arch>.tar.gz from an already built release binary:
#   bin/secsip  config/secsip.toml  rules/ (with lists/)  systemd/secsip.service
# The tarball is reproducible (sorted names, fixed owner, mtime of the last commit), so the
# Ansible role's unarchive sees an unchanged artifact as unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/secsip
[[ -x $bin ]] || { echo "make-dist: $bin missing: run 'cargo build --release' first" >&2; exit 1; }
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
[[ -n $version ]] || { echo "make-dist: no version in Cargo.toml" >&2; exit 1; }
# A binary that does not report the version it is shipped under would make the role's
# version check (secsip --version) lie.
reported=$("$bin" --version)
[[ $reported == "secsip $version" ]] || { echo "make-dist: $bin says '$reported', Cargo.toml says $version: rebuild" >&2; exit 1; }
arch=$(uname -m)
name="secsip-$version-$arch"
out=target/dist
stage="$out/$name"

rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/config" "$stage/systemd"
install -m 0755 "$bin" "$stage/bin/secsip"
install -m 0644 config/secsip.toml "$stage/config/secsip.toml"
install -m 0644 dist/secsip.service "$stage/systemd/secsip.service"
cp -r rules "$stage/rules"
find "$stage/rules" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

# The shipped files must pass the shipped binary's own check before they are shipped.
(cd "$stage" && ./bin/secsip --check -c config/secsip.toml >/dev/null)

epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -C "$out" -cf - "$name" | gzip -n -9 >"$out/$name.tar.gz.tmp"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
rm -rf "$stage"
echo "$out/$name.tar.gz"
