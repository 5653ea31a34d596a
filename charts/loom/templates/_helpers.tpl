{{/* Base name of every object: `loom` for a release named loom, else <release>-loom. */}}
{{- define "loom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "loom" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-loom" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "loom.labels" -}}
app.kubernetes.io/name: loom
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Loom pod's selector (the Service's too). */}}
{{- define "loom.selectorLabels" -}}
app.kubernetes.io/name: loom
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: spindle
{{- end -}}

{{- define "loom.controllerServiceAccount" -}}{{ include "loom.fullname" . }}-controller{{- end -}}
{{- define "loom.jobServiceAccount" -}}{{ include "loom.fullname" . }}-job-runner{{- end -}}

{{- define "loom.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "loom.runnerImage" -}}
{{- if .Values.kubernetes.images.runner -}}
{{ .Values.kubernetes.images.runner }}
{{- else -}}
{{ .Values.runnerImage.repository }}:{{ .Values.runnerImage.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* /etc/loom/config.yaml. Paths match the volumes of the Deployment. */}}
{{- define "loom.config" -}}
{{- $k := .Values.kubernetes -}}
{{- if not (has .Values.secrets.provider (list "sqlite" "openbao")) -}}
{{- fail (printf "secrets.provider must be sqlite or openbao, not %q" .Values.secrets.provider) -}}
{{- end -}}
{{- $server := dict
  "hostname" (required "server.hostname is required: the public host name Tangled reaches this spindle at" .Values.server.hostname)
  "owner" (required "server.owner is required: the DID of the spindle's owner" .Values.server.owner)
  "listenAddr" "0.0.0.0:6555"
  "metricsAddr" "0.0.0.0:9090"
  "dbPath" "/var/lib/loom/spindle.db"
  "logDir" "/var/lib/loom/logs"
  "repoDir" "/var/lib/loom/repos"
  "logRetention" (toString .Values.server.logRetention)
  "jetstreamEndpoint" .Values.server.jetstreamEndpoint
  "plcUrl" .Values.server.plcUrl
  "statusPagePublic" .Values.server.statusPagePublic
  "dev" .Values.server.dev -}}
{{- range $key := list "queueSize" "maxJobCount" "maxJobCountPerRepo" -}}
{{- $v := index $.Values.server $key -}}
{{- if not (kindIs "invalid" $v) }}{{ $_ := set $server $key $v }}{{ end -}}
{{- end -}}
{{- $secrets := dict "provider" .Values.secrets.provider -}}
{{- if eq .Values.secrets.provider "sqlite" -}}
{{- $_ := set $secrets "keyFile" "/var/run/loom/secrets-key/key" -}}
{{- else -}}
{{- $bao := dict "proxyAddr" .Values.secrets.openbao.proxyAddr "mount" .Values.secrets.openbao.mount -}}
{{- if .Values.secrets.openbao.tokenSecret -}}
{{- $_ := set $bao "tokenFile" "/var/run/loom/openbao-token/token" -}}
{{- end -}}
{{- $_ := set $secrets "openbao" $bao -}}
{{- end -}}
{{- $kubernetes := dict
  "namespace" .Release.Namespace
  "serviceAccountName" (include "loom.jobServiceAccount" .)
  "maxConcurrentJobs" $k.maxConcurrentJobs
  "workers" $k.workers
  "imagePullSecrets" $k.imagePullSecrets
  "template" $k.template
  "images" (dict "runner" (include "loom.runnerImage" .) "runnerBundlePath" $k.images.runnerBundlePath "git" $k.images.git "setup" $k.images.setup "pullPolicy" $k.images.pullPolicy)
  "buildah" $k.buildah -}}
{{- if $k.ttl }}{{ $_ := set $kubernetes "ttl" $k.ttl }}{{ end -}}
{{- if $k.timeouts }}{{ $_ := set $kubernetes "timeouts" $k.timeouts }}{{ end -}}
{{- $m := $k.microvm -}}
{{- $microvm := dict
  "images" $m.images
  "postgresqlImage" $m.postgresqlImage
  "redisImage" $m.redisImage
  "mariadbImage" $m.mariadbImage
  "docker" (dict "enabled" $m.docker.enabled "image" $m.docker.image) -}}
{{- if $m.runtimeClassName }}{{ $_ := set $microvm "runtimeClassName" $m.runtimeClassName }}{{ end -}}
{{- $cache := dict -}}
{{- range $key := list "volumeClaimName" "url" "publicKey" -}}
{{- if index $m.cache $key }}{{ $_ := set $cache $key (index $m.cache $key) }}{{ end -}}
{{- end -}}
{{- if $cache }}{{ $_ := set $microvm "cache" $cache }}{{ end -}}
{{- $_ := set $kubernetes "microvm" $microvm -}}
{{- $config := dict
  "server" $server
  "secrets" $secrets
  "nixery" (dict "registry" .Values.nixery.registry "workflowTimeout" .Values.nixery.workflowTimeout)
  "engine" "kubernetes"
  "kubernetes" $kubernetes -}}
{{- toYaml $config -}}
{{- end -}}
