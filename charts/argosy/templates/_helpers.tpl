{{/*
Named templates shared by the chart's manifests. Only functions listed in the chart README
are used (the tests render the chart with Argosy's own Go template engine).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "argosy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: fullnameOverride, the release name if it contains the chart name, or "<release>-<name>". */}}
{{- define "argosy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the controller's Pods (never change them on upgrade). */}}
{{- define "argosy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "argosy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{/* Labels of every object. */}}
{{- define "argosy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "argosy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: argosy
{{- end -}}

{{/* The ServiceAccount the controller runs as. */}}
{{- define "argosy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "argosy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The subject list of every binding: the controller's ServiceAccount. */}}
{{- define "argosy.subjects" -}}
- kind: ServiceAccount
  name: {{ include "argosy.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* Rules the controller needs in every namespace whose ApplicationSets it reconciles. */}}
{{- define "argosy.appsetRules" -}}
# Reconciled objects: watched, finalizer and approval annotation patched.
- apiGroups: ["argoproj.io"]
  resources: ["applicationsets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["argoproj.io"]
  resources: ["applicationsets/status"]
  verbs: ["patch"]
# Applications carry an ownerReference with blockOwnerDeletion to their ApplicationSet;
# the OwnerReferencesPermissionEnforcement admission plugin requires this for that.
- apiGroups: ["argoproj.io"]
  resources: ["applicationsets/finalizers"]
  verbs: ["update"]
# Generated Applications: server-side applied (create + patch), pruned (delete); the sync
# engine patches their status and operation.
- apiGroups: ["argoproj.io"]
  resources: ["applications"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Events about ApplicationSets and Applications (events.k8s.io/v1 only).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
