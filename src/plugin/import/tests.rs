//! The conversion on the vendor's own layout and on every case it cannot carry over. Every output
//! is read back as a BatonConnector and held to the CRD's CEL rules, so that what is printed is
//! what the API server accepts.

use serde::Deserialize as _;

use super::{Report, import, read};
use crate::{api::BatonConnector, plugin::PluginError};


/// The Segment guide's manifests as published (`seeds/`), bugs included: the label `baton: true`
/// and `BATON_PROVISIONING: true` are booleans where Kubernetes wants strings.
const SEGMENT: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: baton-segment-secrets
type: Opaque
stringData:
  BATON_CLIENT_ID: <ConductorOne client ID>
  BATON_CLIENT_SECRET: SEGMENT-C1-SECRET-VALUE
  BATON_TOKEN: SEGMENT-API-TOKEN-VALUE
  BATON_PROVISIONING: true
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: baton-segment
  labels:
    app: baton-segment
spec:
  selector:
    matchLabels:
      app: baton-segment
  template:
    metadata:
      labels:
        app: baton-segment
        baton: true
        baton-app: segment
    spec:
      containers:
      - name: baton-segment
        image: ghcr.io/conductorone/baton-segment:latest
        imagePullPolicy: IfNotPresent
        envFrom:
        - secretRef:
            name: baton-segment-secrets
"#;

/// Okta with every setting in `env`: plain values, Secret keys, the client credentials from one
/// Secret, a pinned image, and the pod settings the spec takes over.
const OKTA: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: baton-okta
  namespace: identity
spec:
  replicas: 1
  selector: {matchLabels: {app: baton-okta}}
  template:
    metadata:
      labels: {app: baton-okta, baton: "true", baton-app: okta, team: iam}
      annotations: {kubectl.kubernetes.io/restartedAt: "2026-01-01T00:00:00Z", owner: iam}
    spec:
      serviceAccountName: baton-okta
      nodeSelector: {pool: connectors}
      tolerations: [{key: dedicated, operator: Equal, value: connectors, effect: NoSchedule}]
      imagePullSecrets: [{name: mirror}]
      containers:
      - name: baton-okta
        image: public.ecr.aws/conductorone/baton-okta:v0.4.2
        resources:
          requests: {cpu: 50m, memory: 64Mi}
          limits: {memory: 512Mi}
        env:
        - {name: BATON_CLIENT_ID, valueFrom: {secretKeyRef: {name: okta-c1, key: BATON_CLIENT_ID}}}
        - {name: BATON_CLIENT_SECRET, valueFrom: {secretKeyRef: {name: okta-c1, key: BATON_CLIENT_SECRET}}}
        - {name: BATON_DOMAIN, value: acme.okta.com}
        - {name: BATON_API_TOKEN, valueFrom: {secretKeyRef: {name: okta-app, key: token}}}
        - {name: BATON_SYNC_INACTIVE_APPS, value: "false"}
        - {name: BATON_HTTP_TIMEOUT_SECONDS, value: "60"}
        - {name: BATON_PROVISIONING, value: "true"}
        - {name: BATON_HOST_ID, value: okta-prod-1}
        - {name: HTTPS_PROXY, value: "http://proxy:3128"}
"#;

fn run(text: &str, name: Option<&str>) -> Report {
    import(&read(text).unwrap(), name, None, None, true).unwrap()
}

/// The documents of an output, as BatonConnectors that pass the CRD's CEL rules.
fn connectors(text: &str) -> Vec<BatonConnector> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc).unwrap();
            let bc: BatonConnector = serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{e}\n{text}"));
            BatonConnector::validate_cel(&bc).unwrap_or_else(|e| panic!("{e}\n{text}"));
            bc
        })
        .collect()
}

#[test]
fn the_vendors_segment_manifests_import_as_secret_references() {
    let report = run(SEGMENT, None);
    let [bc] = connectors(&report.text).try_into().unwrap();
    assert_eq!(bc.metadata.name.as_deref(), Some("baton-segment"));
    assert_eq!(bc.spec.connector, "segment");
    let image = bc.spec.image.as_ref().unwrap();
    assert_eq!(image.repository.as_deref(), Some("ghcr.io/conductorone/baton-segment"));
    assert_eq!((image.tag.as_deref(), image.digest.as_deref()), (None, None), "latest is the default");
    assert_eq!(bc.spec.secret_refs[0].name, "baton-segment-secrets");
    assert_eq!(bc.spec.credentials.secret_ref.as_ref().unwrap().name, "baton-segment-secrets");
    assert!(bc.spec.config.is_empty() && bc.spec.env.is_empty());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let text = &report.text;
    assert!(text.contains("baton-segment-secrets supplies BATON_TOKEN"), "{text}");
    assert!(text.contains("has a key BATON_PROVISIONING"), "{text}");
    assert!(report.warnings.iter().any(|w| w.contains("labels.baton is not a string")), "{:?}", report.warnings);
    assert!(report.warnings.iter().any(|w| w.contains("stringData.BATON_PROVISIONING")), "{:?}", report.warnings);
    assert!(!text.contains("SEGMENT-API-TOKEN-VALUE") && !text.contains("SEGMENT-C1-SECRET-VALUE"));
}

#[test]
fn okta_settings_become_typed_config_by_field_name() {
    let report = run(OKTA, Some("baton-okta"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let expected = r#"# Imported by `kubectl baton import` from Deployment identity/baton-okta (image public.ecr.aws/conductorone/baton-okta:v0.4.2).
# Review it, then compare what the operator would run with the running Deployment:
# baton-operator render -f <this file> | kubectl diff -f -   (docs/migration.md)
apiVersion: baton.conductorone.com/v1alpha1
kind: BatonConnector
metadata:
  # BATON_HOST_ID was "okta-prod-1"; the operator sets it to the resource's name, "baton-okta" (docs/migration.md#the-host-id)
  name: baton-okta
  namespace: identity
spec:
  connector: okta
  image:
    tag: v0.4.2
  imagePullSecrets:
  - name: mirror
  env:
  - name: HTTPS_PROXY
    value: http://proxy:3128
  config:
    api-token:
      secretKeyRef:
        name: okta-app
        key: token
    # from BATON_DOMAIN
    domain:
      value: acme.okta.com
    # from BATON_HTTP_TIMEOUT_SECONDS
    http-timeout-seconds:
      value: 60
    # from BATON_SYNC_INACTIVE_APPS
    sync-inactive-apps:
      value: false
  # from BATON_PROVISIONING
  provisioning: true
  serviceAccountName: baton-okta
  # BATON_CLIENT_ID and BATON_CLIENT_SECRET from Secret okta-c1
  credentials:
    secretRef:
      name: okta-c1
  resources:
    limits:
      memory: 512Mi
    requests:
      cpu: 50m
      memory: 64Mi
  nodeSelector:
    pool: connectors
  tolerations:
  - effect: NoSchedule
    key: dedicated
    operator: Equal
    value: connectors
  podLabels:
    team: iam
  podAnnotations:
    owner: iam
"#;
    assert_eq!(report.text, expected);
    connectors(&report.text);
}
