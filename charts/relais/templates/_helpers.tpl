{{/*
Names, labels and the pieces every Relais container shares.
*/}}

{{- define "relais.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The services this chart runs, in values order: key in values -> what runs and where it answers. */}}
{{- define "relais.components" -}}
directory:
  name: directory
  args: [serve, directory]
provisioning:
  name: provisioning
  args: [serve, provisioning]
provisioningApi:
  name: provisioning-api
  args: [serve, provisioning-api]
  httpPort: 8420
sso:
  name: sso
  args: [serve, sso]
  httpPort: 8430
usage:
  name: usage
  args: [serve, usage]
vault:
  name: vault
  args: [serve, vault]
console:
  name: console
  args: [serve, console]
  httpPort: 8440
{{- end -}}

{{- define "relais.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "relais.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "relais.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: relais
{{- end -}}

{{- define "relais.image" -}}
{{- $repository := required "image.repository: the Relais image in your registry (built from the Dockerfile) is required" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "relais.amqpScheme" -}}
{{- if .Values.rabbitmq.tls }}amqps{{ else }}amqp{{ end -}}
{{- end -}}

{{/*
Connection settings. Passwords come from the Secrets the values name, through
environment variables that the URLs reference as $(VAR): Kubernetes substitutes
them when the container starts, so no password is ever written in a manifest.
*/}}
{{- define "relais.env" -}}
- name: RELAIS_TENANT
  value: {{ .Values.tenant | quote }}
- name: RELAIS_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: RELAIS_LOG_FORMAT
  value: json
- name: RELAIS_OPS_PORT
  value: {{ .Values.opsPort | quote }}
- name: RELAIS_POSTGRESQL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgresql.existingSecret }}
      key: {{ .Values.postgresql.passwordKey }}
- name: RELAIS_DATABASE_URL
  value: {{ printf "postgresql://%s:$(RELAIS_POSTGRESQL_PASSWORD)@%s:%d/%s?sslmode=%s" .Values.postgresql.username (required "postgresql.host: the PostgreSQL server's host name is required" .Values.postgresql.host) (int .Values.postgresql.port) .Values.postgresql.database .Values.postgresql.sslMode | quote }}
{{- if .Values.rabbitmq.quorumQueues }}
- name: RELAIS_QUEUE_TYPE
  value: quorum
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
How one service reaches RabbitMQ: as its own user, <rabbitmq.userPrefix><service>, whose password is the
key RELAIS_BROKER_PASSWORD_<SERVICE> of rabbitmq.existingSecret (deploy/broker-users.md). Called with
(dict "root" $ "service" "directory").
*/}}
{{- define "relais.amqpEnv" -}}
{{- $mq := .root.Values.rabbitmq -}}
- name: RELAIS_RABBITMQ_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $mq.existingSecret }}
      key: {{ printf "RELAIS_BROKER_PASSWORD_%s" (upper .service | replace "-" "_") }}
- name: RELAIS_AMQP_URI
  value: {{ printf "%s://%s%s:$(RELAIS_RABBITMQ_PASSWORD)@%s:%d/%s" (include "relais.amqpScheme" .root) $mq.userPrefix .service (required "rabbitmq.host: the RabbitMQ cluster's host name is required" $mq.host) (int $mq.port) (urlquery $mq.vhost) | quote }}
{{- end -}}

{{/* Where a pod writes: the image's root filesystem is read-only. */}}
{{- define "relais.writableVolumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "relais.writableMounts" -}}
- name: data
  mountPath: /var/lib/relais
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "relais.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.serviceAccountName }}
serviceAccountName: {{ .Values.serviceAccountName }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
