# Sourced by .ci/run and by the benchmark's instructions: makes a local control plane available to the
# end-to-end suite. kube-apiserver and kube-controller-manager come xz-compressed from ../shared/control-plane
# (no registry ships them) and are unpacked into a temporary folder, never into the project; etcd comes
# from Debian. Variables already set by the caller win. Without binaries the suite skips and says why.

baton_shared_cp="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/control-plane"
if [ -z "${BATON_E2E_KUBECONFIG:-}" ] && [ -z "${BATON_E2E_KUBE_APISERVER:-}" ] \
  && [ -f "$baton_shared_cp/kube-apiserver.xz" ] && [ -f "$baton_shared_cp/kube-controller-manager.xz" ]; then
  # One folder per content, so a second run on the same machine reuses the unpacked binaries.
  baton_cp_dir="${TMPDIR:-/tmp}/baton-control-plane-$(sha256sum "$baton_shared_cp/SHA256SUMS" | cut -c1-12)"
  if ! (cd "$baton_cp_dir" 2>/dev/null && sha256sum --quiet -c "$baton_shared_cp/SHA256SUMS" >/dev/null 2>&1); then
    echo "unpacking kube-apiserver and kube-controller-manager into $baton_cp_dir"
    mkdir -p "$baton_cp_dir"
    for b in kube-apiserver kube-controller-manager; do
      xz -dc "$baton_shared_cp/$b.xz" >"$baton_cp_dir/$b.tmp" && chmod +x "$baton_cp_dir/$b.tmp" \
        && mv "$baton_cp_dir/$b.tmp" "$baton_cp_dir/$b"
    done
    (cd "$baton_cp_dir" && sha256sum --quiet -c "$baton_shared_cp/SHA256SUMS") \
      || echo "warning: the unpacked control-plane binaries do not match SHA256SUMS"
  fi
  export BATON_E2E_KUBE_APISERVER="$baton_cp_dir/kube-apiserver"
  export BATON_E2E_KUBE_CONTROLLER_MANAGER="$baton_cp_dir/kube-controller-manager"
fi
if [ -n "${BATON_E2E_KUBE_APISERVER:-}" ] || command -v kube-apiserver >/dev/null; then
  if ! command -v etcd >/dev/null && [ -z "${BATON_E2E_ETCD:-}" ]; then
    echo "installing etcd-server for the end-to-end suite"
    (apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null) \
      || echo "could not install etcd-server; the e2e suite will skip"
  fi
fi
unset baton_shared_cp baton_cp_dir
