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
    assert!(
        report.warnings.iter().any(|w| w.contains("labels.baton is not a string")),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("stringData.BATON_PROVISIONING")),
        "{:?}",
        report.warnings
    );
    assert!(!text.contains("SEGMENT-API-TOKEN-VALUE") && !text.contains("SEGMENT-C1-SECRET-VALUE"));
}

#[test]
fn okta_settings_become_typed_config_by_field_name() {
    let report = run(OKTA, Some("baton-okta"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let expected = r#"# Imported by `kubectl baton import` from Deployment identity/baton-okta (image public.ecr.aws/conductorone/baton-okta:v0.4.2).
# Review it, and compare what the operator would run with the running Deployment
# (baton-operator render): docs/migration.md.
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

/// A Deployment with `pod` under `spec.template.spec` and the connector container `container`.
fn deployment(name: &str, replicas: u32, container: &str, pod: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{pod}      containers:\n      - name: connector\n{container}"
    )
}

#[test]
fn everything_the_resource_cannot_express_is_listed_as_not_carried_over() {
    let container = r#"        image: public.ecr.aws/conductorone/baton-okta@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
        command: [/baton-okta]
        args: ["--api-token", "ARG-TOKEN-VALUE"]
        livenessProbe: {httpGet: {path: /live, port: 8081}}
        readinessProbe: {httpGet: {path: /ready, port: 8081}}
        volumeMounts: [{name: key, mountPath: /keys}]
        env:
        - {name: BATON_DOMAIN, valueFrom: {configMapKeyRef: {name: okta-settings, key: domain}}}
        - {name: BATON_LOG_LEVEL, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: AWS_SECRET_ACCESS_KEY, valueFrom: {secretKeyRef: {name: aws, key: secret}}}
        envFrom:
        - configMapRef: {name: okta-env}
        - {prefix: OKTA_, secretRef: {name: prefixed}}
      - name: proxy
        image: envoyproxy/envoy:v1.30
"#;
    let pod = "      volumes:\n      - {name: key, secret: {secretName: okta-key}}\n      initContainers:\n      - {name: wait, image: busybox}\n";
    let report = run(&deployment("baton-okta", 3, container, pod), None);
    let text = &report.text;
    for expected in [
        "not carried over: replicas: 3",
        "not carried over: command (1 entries, not printed)",
        "not carried over: args (2 entries, not printed)",
        "not carried over: volume key (a Secret mounted as files",
        "not carried over: volumeMount key at /keys",
        "not carried over: container proxy (a sidecar)",
        "not carried over: initContainer wait",
        "not carried over: livenessProbe: spec.healthCheck.enabled",
        "not carried over: readinessProbe",
        "not carried over: env BATON_DOMAIN (valueFrom.configMapKeyRef)",
        "not carried over: env BATON_LOG_LEVEL (valueFrom.fieldRef)",
        "not carried over: env AWS_SECRET_ACCESS_KEY (valueFrom.secretKeyRef aws/secret)",
        "not carried over: envFrom ConfigMap okta-env",
        "not carried over: envFrom Secret prefixed with prefix \"OKTA_\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("ARG-TOKEN-VALUE"), "{text}");
    let [bc] = connectors(text).try_into().unwrap();
    let image = bc.spec.image.unwrap();
    assert_eq!(image.digest.as_deref().map(|d| &d[..7]), Some("sha256:"));
    assert_eq!(image.repository, None, "the operator's default registry");
    // Nothing says where the client credentials are: a Secret to create, with what to put in it.
    assert_eq!(bc.spec.credentials.secret_ref.unwrap().name, "baton-okta-c1-client");
    assert!(text.contains("create Secret baton-okta-c1-client"), "{text}");
    // The domain came from a ConfigMap, so the required field is missing: the operator's own check says so.
    assert!(report.errors.iter().any(|e| e.contains("domain")), "{:?}", report.errors);
}

#[test]
fn a_custom_connector_keeps_its_settings_in_env_unvalidated() {
    let container = r#"        image: registry.example.com:5000/team/baton-acme:1.2.3
        env:
        - {name: BATON_ACME_URL, value: "https://acme.example.com"}
        - {name: BATON_ACME_TOKEN, valueFrom: {secretKeyRef: {name: acme, key: token}}}
        - {name: BATON_CLIENT_ID, valueFrom: {secretKeyRef: {name: acme-c1, key: client-id}}}
        - {name: BATON_CLIENT_SECRET, valueFrom: {secretKeyRef: {name: acme-c1, key: client-secret}}}
"#;
    let report = run(&deployment("acme", 1, container, ""), None);
    let [bc] = connectors(&report.text).try_into().unwrap();
    assert_eq!(bc.spec.connector, "acme");
    let image = bc.spec.image.as_ref().unwrap();
    assert_eq!(image.repository.as_deref(), Some("registry.example.com:5000/team/baton-acme"));
    assert_eq!(image.tag.as_deref(), Some("1.2.3"));
    assert_eq!(bc.spec.env[0].name, "BATON_ACME_URL");
    assert_eq!(bc.spec.config["acme-token"].secret_key_ref.as_ref().unwrap().key, "token");
    assert!(report.text.contains("not in the operator's catalog"), "{}", report.text);
    assert!(report.text.contains("BATON_ACME_URL: not validated"), "{}", report.text);
    assert!(report.warnings.iter().any(|w| w.contains("not validated")), "{:?}", report.warnings);
    // The client credentials are in a Secret, under other keys: copied into one the operator reads.
    assert_eq!(bc.spec.credentials.secret_ref.as_ref().unwrap().name, "acme-c1-client");
    assert!(
        report.text.contains("kubectl get secret acme-c1 -o jsonpath='{.data.client-id}' | base64 -d"),
        "{}",
        report.text
    );
}

#[test]
fn secrets_are_never_printed() {
    let container = r#"        image: public.ecr.aws/conductorone/baton-okta
        env:
        - {name: BATON_CLIENT_ID, value: INLINE-CLIENT-ID}
        - {name: BATON_CLIENT_SECRET, value: INLINE-CLIENT-SECRET}
        - {name: BATON_DOMAIN, value: acme.okta.com}
        - {name: BATON_API_TOKEN, value: INLINE-API-TOKEN}
        - {name: BATON_UNKNOWN_PASSWORD, value: INLINE-PASSWORD}
        - {name: DB_PASSWORD, value: INLINE-DB-PASSWORD}
        envFrom: [{secretRef: {name: okta}}]
"#;
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: okta}\ndata: {BATON_EXTRA: U0VDUkVULURBVEE=}\nstringData: {BATON_OTHER: SECRET-STRING-DATA}\n---\n";
    let report = run(&format!("{secret}{}", deployment("okta", 1, container, "")), None);
    let all = format!("{}\n{}\n{}", report.text, report.warnings.join("\n"), report.errors.join("\n"));
    for value in ["INLINE-", "U0VDUkVULURBVEE", "SECRET-STRING-DATA"] {
        assert!(!all.contains(value), "{value} printed:\n{all}");
    }
    let text = &report.text;
    assert!(text.contains("BATON_API_TOKEN (api-token) is a secret field written inline"), "{text}");
    assert!(text.contains("DB_PASSWORD is written inline in the Deployment and may be a secret"), "{text}");
    assert!(text.contains("writes the ConductorOne client credentials inline"), "{text}");
    connectors(text);
}

#[test]
fn a_file_of_many_deployments_imports_each_connector_and_skips_the_rest() {
    let own = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: okta\n  labels: {app.kubernetes.io/managed-by: baton-operator}\nspec:\n  selector: {}\n  template: {spec: {containers: [{name: c, image: public.ecr.aws/conductorone/baton-okta}]}}\n";
    let web = deployment("web", 1, "        image: nginx:1.27\n", "");
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}",
        serde_json::to_string(
            &serde_yaml::from_str::<serde_json::Value>(SEGMENT.split("---").nth(1).unwrap()).unwrap()
        )
        .unwrap(),
        serde_json::to_string(&serde_yaml::from_str::<serde_json::Value>(&web).unwrap()).unwrap(),
    );
    let report = run(&format!("{own}---\n{list}"), None);
    assert_eq!(connectors(&report.text).len(), 1);
    assert!(
        report.warnings.iter().any(|w| w.contains("\"okta\" is the operator's own")),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("\"web\" runs no baton-<connector> image")),
        "{:?}",
        report.warnings
    );
    // Named, a Deployment that is not there is not found; one that is not a connector is an error.
    let objects = read(&web).unwrap();
    assert!(matches!(import(&objects, Some("nope"), None, None, true), Err(PluginError::NotFound { .. })));
    assert!(matches!(import(&objects, Some("web"), None, None, true), Err(PluginError::Other(_))));
    let named = import(&objects, Some("web"), Some("acme"), Some("apps"), true).unwrap();
    assert!(named.text.contains("namespace: apps"), "{}", named.text);
}

#[test]
fn settings_the_operator_would_refuse_are_errors_with_its_words() {
    let container = "        image: public.ecr.aws/conductorone/baton-okta\n        env:\n        - {name: BATON_DOMAN, value: acme.okta.com}\n        - {name: BATON_HTTP_TIMEOUT_SECONDS, value: soon}\n";
    let report = run(&deployment("okta", 1, container, ""), None);
    assert!(
        report.errors.iter().any(|e| e.contains("did you mean") && e.contains("BATON_DOMAIN")),
        "{:?}",
        report.errors
    );
    assert!(report.errors.iter().any(|e| e.contains("BATON_HTTP_TIMEOUT_SECONDS")), "{:?}", report.errors);
    let mut out = Vec::new();
    let err = super::finish(report, &mut out).unwrap_err();
    assert_eq!(err.exit_code(), crate::plugin::error::exit::SETTINGS_INVALID);
    assert!(!out.is_empty(), "the draft is printed all the same");
}

/// The SDK's own flags (`BATON_AUTH_METHOD`, `BATON_LOG_LEVEL`) are settings like any field, even
/// when a name reads like a secret's; the guides' host id (`baton-<app>`) stays what it was.
#[test]
fn sdk_flags_carry_over_and_the_guides_host_id_stays() {
    let container = "        image: public.ecr.aws/conductorone/baton-okta\n        env:\n        - {name: BATON_AUTH_METHOD, value: api-token-group}\n        - {name: BATON_LOG_LEVEL, value: debug}\n        - {name: BATON_HOST_ID, value: baton-okta}\n        - {name: BATON_DOMAIN, value: acme.okta.com}\n        - {name: BATON_API_TOKEN, valueFrom: {secretKeyRef: {name: okta, key: token}}}\n";
    let report = run(&deployment("baton-okta", 1, container, ""), None);
    let [bc] = connectors(&report.text).try_into().unwrap();
    assert_eq!(bc.spec.config["auth-method"].value, Some("api-token-group".into()));
    assert_eq!(bc.spec.config["log-level"].value, Some("debug".into()));
    assert!(report.text.contains("BATON_HOST_ID stays \"baton-okta\""), "{}", report.text);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}
