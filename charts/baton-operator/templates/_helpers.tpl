{{/*
The chart name, or nameOverride.
*/}}
{{- define "baton-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else <release>-<chart>. Truncated to 63 characters (DNS label).
*/}}
{{- define "baton-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "baton-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "baton-operator.labels" -}}
helm.sh/chart: {{ include "baton-operator.chart" . }}
{{ include "baton-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: baton-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (a Deployment's selector is immutable).
*/}}
{{- define "baton-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "baton-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "baton-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: repository@digest when a digest is set, else repository:tag (tag defaults to
the chart's appVersion).
*/}}
{{- define "baton-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
Where the CA bundle is mounted, and the file SSL_CERT_FILE names.
*/}}
{{- define "baton-operator.caBundleDir" -}}
/etc/baton-operator/ca
{{- end }}
{{- define "baton-operator.caBundleFile" -}}
{{- printf "%s/ca-bundle.pem" (include "baton-operator.caBundleDir" .) }}
{{- end }}

{{/*
The operator's permissions on the objects it reconciles, the same as config/rbac/cluster_role.yaml.
Secrets: it reads the ones BatonConnectors reference, watches their metadata to roll pods when their
data changes, and writes managed credentials.
*/}}
{{- define "baton-operator.rules" -}}
# patch: the finalizer that revokes minted credentials on deletion.
- apiGroups: ["baton.conductorone.com"]
  resources: ["batonconnectors"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["baton.conductorone.com"]
  resources: ["batonconnectors/status"]
  verbs: ["get", "patch"]
# Controller owner references set blockOwnerDeletion, which needs this where the
# OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift, hardened clusters).
- apiGroups: ["baton.conductorone.com"]
  resources: ["batonconnectors/finalizers"]
  verbs: ["update"]
# The ConductorOne tenants connectors name (conductorOne.tenantRef); patch for the finalizer
# that holds a tenant's deletion while connectors use it, status for its own status.
- apiGroups: ["baton.conductorone.com"]
  resources: ["conductoronetenants"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["baton.conductorone.com"]
  resources: ["conductoronetenants/status"]
  verbs: ["get", "patch"]
# delete: switching a connector between Service and OneShot mode removes the other workload.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Adoption (the adopt-existing annotation): the ReplicaSets a released hand-written Deployment left
# running are found by its selector and deleted once the connector's own pod is available.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list", "delete"]
# OneShot mode: the CronJob, and a Job for each requested run.
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create"]
# The connector pods' own answer (image pull, crash loop, OOM, scheduling) in the status.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# create/delete: the Secret revisions holding managed ConductorOne credentials.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Repeats of an event within minutes become a PATCH of the event series.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{- /* Rules a cluster-wide install adds to baton-operator.rules (a Role cannot grant them). */ -}}
{{- define "baton-operator.clusterRules" -}}
# ClusterConductorOneTenants, and the labels of a connector's namespace when a cluster tenant
# allows namespaces by a label selector.
- apiGroups: ["baton.conductorone.com"]
  resources: ["clusterconductoronetenants"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["baton.conductorone.com"]
  resources: ["clusterconductoronetenants/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}
