{{/* Names -------------------------------------------------------------------------- */}}

{{- define "qs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qs.fullname" -}}
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

{{/* Name of one component's resources: <fullname>-<component>. Call with (list $ "gateway"). */}}
{{- define "qs.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "qs.fullname" $root | trunc 52 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "qs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "qs.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------- */}}

{{- define "qs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "qs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quantum-signals
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component; the component label is also in its selector. (list $ "gateway") */}}
{{- define "qs.componentLabels" -}}
{{ include "qs.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "qs.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "qs.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Images ------------------------------------------------------------------------- */}}

{{/* repository:tag or repository@digest. Call with (list $ .Values.gateway.image). */}}
{{- define "qs.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Redis -------------------------------------------------------------------------- */}}

{{- define "qs.redisHost" -}}
{{- include "qs.componentName" (list . "redis") -}}
{{- end -}}

{{/* Env entries that define REDIS_URL for both services. */}}
{{- define "qs.redisEnv" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.existingSecretKey }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "qs.redisHost" .) | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "redis://%s:6379/0" (include "qs.redisHost" .) | quote }}
{{- end }}
{{- else if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- end -}}

{{/* Pods --------------------------------------------------------------------------- */}}

{{/* terminationGracePeriodSeconds: preStop sleep + the service's own drain + 5 s margin. */}}
{{- define "qs.terminationGrace" -}}
{{- add (int .preStopSleepSeconds) (ceil .shutdownGraceSeconds | int) 5 -}}
{{- end -}}

{{/* Probes on the services' real routes; only the timings come from values. (list "/livez" "http" .Values.gateway.livenessProbe) */}}
{{- define "qs.probe" -}}
httpGet:
  path: {{ index . 0 }}
  port: {{ index . 1 }}
{{ toYaml (index . 2) }}
{{- end -}}

{{/* Validation: impossible combinations fail with a message that says how to fix them. */}}
{{- define "qs.validate" -}}
{{- $gw := .Values.gateway -}}
{{- $several := or (gt (int $gw.replicaCount) 1) (and $gw.autoscaling.enabled (gt (int $gw.autoscaling.maxReplicas) 1)) -}}
{{- if and (has "polling" $gw.transports) $several (not $gw.stickySessions) -}}
{{- fail "gateway: long-polling with more than one replica needs sticky sessions (a client's polling requests must all reach the same pod). Fix: set gateway.stickySessions=true (cookie affinity on the nginx Ingress, ClientIP on the Service), or gateway.transports={websocket} for websocket-only clients." -}}
{{- end -}}
{{- if and .Values.redis.enabled (or .Values.redis.url .Values.redis.existingSecret) -}}
{{- fail "redis: redis.url / redis.existingSecret point at an external Redis, but redis.enabled=true also deploys one. Fix: set redis.enabled=false to use the external Redis, or unset redis.url and redis.existingSecret." -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.url) (not .Values.redis.existingSecret) -}}
{{- fail "redis: redis.enabled=false but no external Redis is configured. Fix: set redis.url=redis://host:6379/0, or redis.existingSecret=<secret> holding the URL under redis.existingSecretKey." -}}
{{- end -}}
{{- if and $gw.autoscaling.enabled (gt (int $gw.autoscaling.minReplicas) (int $gw.autoscaling.maxReplicas)) -}}
{{- fail "gateway.autoscaling: minReplicas is larger than maxReplicas. Fix: raise maxReplicas or lower minReplicas." -}}
{{- end -}}
{{- $monitoring := or .Values.metrics.serviceMonitor.enabled .Values.metrics.prometheusRule.enabled -}}
{{- if and $monitoring (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
{{- fail "metrics: serviceMonitor/prometheusRule need the Prometheus Operator CRDs (monitoring.coreos.com/v1), which this cluster does not serve. Fix: install the Prometheus Operator (e.g. kube-prometheus-stack) first, or set metrics.serviceMonitor.enabled=false and metrics.prometheusRule.enabled=false (with helm template, pass --api-versions monitoring.coreos.com/v1)." -}}
{{- end -}}
{{- end -}}
