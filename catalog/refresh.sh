#!/usr/bin/env bash
# Rewrites catalog/connectors/ from local checkouts of the connector repositories, for a release.
# Usage: catalog/refresh.sh DIR   (DIR holds baton-<name>/ checkouts at the commits to ship)
# Not run by the build or by CI; see catalog/README.md. Needs git and jq; no network.
set -euo pipefail
src=${1:?usage: catalog/refresh.sh DIR-WITH-baton-CHECKOUTS}
out="$(cd "$(dirname "$0")" && pwd)/connectors"
index='[]'
provenance='{}'
for repo in "$src"/baton-*/; do
  name=$(basename "$repo"); name=${name#baton-}
  [ -f "$repo/config_schema.json" ] || { echo "skip $name: no config_schema.json" >&2; continue; }
  commit=$(git -C "$repo" rev-parse HEAD)
  # Both `require x v` and a line inside a `require (...)` block.
  sdk=$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/conductorone/baton-sdk") {print $(i + 1); exit}}' "$repo/go.mod")
  caps=null
  [ -f "$repo/baton_capabilities.json" ] && caps=$(cat "$repo/baton_capabilities.json")
  jq -n --arg c "$name" --arg r "ConductorOne/baton-$name" --arg commit "$commit" --arg sdk "$sdk" \
    --slurpfile schema "$repo/config_schema.json" --argjson caps "$caps" \
    '{connector: $c, repository: $r, commit: $commit, sdkVersion: $sdk, schema: $schema[0], capabilities: $caps}' \
    > "$out/$name.json"
  index=$(jq --slurpfile f "$out/$name.json" '. + [$f[0] | {connector, repository, commit, sdkVersion,
      displayName: (.schema.displayName // null),
      requiredFields: [.schema.fields[] | select((.isOps | not) and .isRequired) | .name],
      secretFields: [.schema.fields[] | select(.isSecret) | .name],
      fieldGroups: [(.schema.fieldGroups // [])[] | .name],
      fieldCount: ([.schema.fields[] | select(.isOps | not)] | length)}]' <<<"$index")
  provenance=$(jq --arg c "$name" --arg commit "$commit" \
    '. + {($c): {source: "local checkout", schemaCommit: $commit, capabilitiesCommit: $commit, goModCommit: $commit, sameCommit: true}}' <<<"$provenance")
done
jq 'sort_by(.connector)' <<<"$index" > "$out/index.json"
jq -S . <<<"$provenance" > "$out/provenance.json"
echo "wrote $(jq length "$out/index.json") connectors to $out" >&2
