{{/* The chart's name, cut to Kubernetes' 63 characters. */}}
{{- define "connectors.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name for every object. */}}
{{- define "connectors.fullname" -}}
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

{{/* The headless Service through which replicas find their gossip peers. */}}
{{- define "connectors.peersName" -}}
{{- printf "%s-peers" (include "connectors.fullname" . | trunc 57 | trimSuffix "-") -}}
{{- end -}}

{{/* The Secret with the keys every replica shares. */}}
{{- define "connectors.keysSecret" -}}
{{- if .Values.sharedKeys.existingSecret -}}
{{- .Values.sharedKeys.existingSecret -}}
{{- else -}}
{{- printf "%s-keys" (include "connectors.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}
{{- end -}}

{{- define "connectors.selectorLabels" -}}
app.kubernetes.io/name: {{ include "connectors.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "connectors.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "connectors.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The Vault credentials' env, from the Secret the operator made. */}}
{{- define "connectors.vaultAuthEnv" -}}
{{- $auth := .Values.vault.auth -}}
{{- $secret := required "vault.auth.existingSecret: name the Secret holding the gateway's Vault credentials" $auth.existingSecret -}}
{{- if eq $auth.method "approle" }}
- name: VAULT_ROLE_ID
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ $auth.roleIDKey | quote }}}
- name: VAULT_SECRET_ID
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ $auth.secretIDKey | quote }}}
{{- else if eq $auth.method "token" }}
- name: VAULT_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ $auth.tokenKey | quote }}}
{{- else }}
{{- fail (printf "vault.auth.method: %q is neither approle nor token (the gateway has no other Vault auth method)" $auth.method) }}
{{- end }}
{{- end -}}
