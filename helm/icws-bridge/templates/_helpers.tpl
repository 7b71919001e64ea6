{{/*
Names, labels and checks shared by the templates.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "icws-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of every resource: fullnameOverride, or <release>-<name>, or just the release name
when it already contains the chart name. Truncated to 63 characters (DNS label).
*/}}
{{- define "icws-bridge.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "icws-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pod; they never change across upgrades. */}}
{{- define "icws-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "icws-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "icws-bridge.labels" -}}
helm.sh/chart: {{ include "icws-bridge.chart" . }}
{{ include "icws-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/component: bridge
app.kubernetes.io/part-of: icws-bridge
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the pod runs as. */}}
{{- define "icws-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "icws-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the credentials: existingSecret, or the chart's own. */}}
{{- define "icws-bridge.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "icws-bridge.fullname" . }}
{{- end }}
{{- end }}

{{/*
Where the bridge's Service serves the event schemas: http://<fullname>.<namespace>.svc:<port>/schemas
(<name>.<namespace>.svc resolves through the pod DNS search path, whatever the cluster domain).
*/}}
{{- define "icws-bridge.schemaBaseUrl" -}}
{{- printf "http://%s.%s.svc:%v/schemas" (include "icws-bridge.fullname" .) .Release.Namespace .Values.health.port }}
{{- end }}

{{/* Where a fleet's accounts Secret is mounted, one file per ICWS user. */}}
{{- define "icws-bridge.accountsDir" -}}
/etc/icws-bridge/accounts
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "icws-bridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Checks the schema cannot express. Fails the render with a message naming the value to set.
*/}}
{{- define "icws-bridge.validate" -}}
{{- if .Values.accounts.existingSecret }}
{{- if or .Values.config.icws.username .Values.icws.password }}
{{- fail "icws-bridge: with accounts.existingSecret (a fleet), leave config.icws.username and icws.password empty: the accounts Secret names every user" }}
{{- end }}
{{- else }}
{{- if not .Values.config.icws.username }}
{{- fail "icws-bridge: set config.icws.username (one account), or accounts.existingSecret naming a Secret with one key per ICWS user (a fleet)" }}
{{- end }}
{{- if and (not .Values.existingSecret) (not .Values.icws.password) }}
{{- fail "icws-bridge: set icws.password, or existingSecret naming a Secret with the key icws__password" }}
{{- end }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not (dig "commands" "enabled" true .Values.config)) }}
{{- fail "icws-bridge: replicaCount above 1 needs config.commands.enabled: without the command consumer group every pod would hold every account" }}
{{- end }}
{{- if and .Values.existingSecret .Values.icws.password }}
{{- fail "icws-bridge: set either icws.password or existingSecret, not both" }}
{{- end }}
{{- if and .Values.existingSecret .Values.kafka.saslPassword }}
{{- fail "icws-bridge: with existingSecret, put kafka__sasl_password into that Secret instead of kafka.saslPassword" }}
{{- end }}
{{- end }}
