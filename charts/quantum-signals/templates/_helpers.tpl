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

{{/* Headless Service of the Sentinel StatefulSet: stable pod names <pod>.<this>. */}}
{{- define "qs.redisHeadless" -}}
{{- printf "%s-headless" (include "qs.componentName" (list . "redis")) -}}
{{- end -}}

{{/* redis+sentinel://pod-0.headless.ns.svc:26379,...:26379/0/<masterSet> (common/redis_url.py). */}}
{{- define "qs.sentinelUrl" -}}
{{- $hosts := list -}}
{{- range $i := until 3 -}}
{{- $hosts = append $hosts (printf "%s-%d.%s.%s.svc:26379" (include "qs.redisHost" $) $i (include "qs.redisHeadless" $) $.Release.Namespace) -}}
{{- end -}}
{{- printf "redis+sentinel://%s/0/%s" (join "," $hosts) .Values.redis.sentinel.masterSet -}}
{{- end -}}

{{/* Env entries that define REDIS_URL (and REDIS_PASSWORD) for both services. */}}
{{- define "qs.redisEnv" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.existingSecretKey }}
{{- end }}
{{- if .Values.redis.sentinel.enabled }}
# Sentinel form: the services ask the sentinels for the master and follow a failover;
# the password (if any) stays in REDIS_PASSWORD, out of the URL.
- name: REDIS_URL
  value: {{ include "qs.sentinelUrl" . | quote }}
{{- else if .Values.redis.auth.existingSecret }}
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

{{/* The port /metrics and the probes are served on: metricsPort, or port when it is 0. */}}
{{- define "qs.metricsPortNumber" -}}
{{- if gt (int .metricsPort) 0 -}}{{ .metricsPort }}{{- else -}}{{ .port }}{{- end -}}
{{- end -}}

{{/* Env entries from existing Secrets: NAME: {secret, key}. Call with a component's values. */}}
{{- define "qs.secretEnv" -}}
{{- range $name, $ref := .secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secret }}
      key: {{ $ref.key }}
{{- end }}
{{- end -}}

{{/* Pod metadata annotations: the config checksum, then the component's podAnnotations. (list $ values checksum) */}}
{{- define "qs.podAnnotations" -}}
{{- $checksum := index . 2 -}}
{{- with $checksum }}
checksum/config: {{ . }}
{{- end }}
{{- with (index . 1).podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* initContainers, spelled the same for every component. Call with a component's values. */}}
{{- define "qs.initContainers" -}}
{{- with .initContainers }}
initContainers:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling keys of a pod spec, the same for every component. (list $ values "gateway") */}}
{{- define "qs.podScheduling" -}}
{{- $root := index . 0 -}}
{{- $v := index . 1 -}}
{{- $component := index . 2 -}}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- range $v.topologySpreadConstraints }}
  - {{- toYaml (omit . "labelSelector") | nindent 4 }}
    labelSelector:
      {{- if .labelSelector }}
      {{- toYaml .labelSelector | nindent 6 }}
      {{- else }}
      matchLabels:
        {{- include "qs.selectorLabels" (list $root $component) | nindent 8 }}
      {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Validation: impossible combinations fail with a message that says how to fix them. */}}
{{- define "qs.validate" -}}
{{- $gw := .Values.gateway -}}
{{- $several := or (gt (int $gw.replicaCount) 1) (and $gw.autoscaling.enabled (gt (int $gw.autoscaling.maxReplicas) 1)) -}}
{{- if and (has "polling" $gw.transports) $several -}}
{{- $clientIP := eq $gw.service.sessionAffinity "ClientIP" -}}
{{- if and $gw.ingress.enabled (not $gw.stickySessions) -}}
{{- fail "gateway: long-polling with more than one replica needs sticky sessions (a client's polling requests must all reach the same pod). Fix: set gateway.stickySessions=true (cookie affinity on the nginx Ingress), or gateway.transports={websocket} for websocket-only clients." -}}
{{- end -}}
{{- if and $gw.httpRoute.enabled (not $gw.httpRoute.sessionPersistence) -}}
{{- fail "gateway.httpRoute: long-polling with more than one replica needs sticky sessions, which Gateway API offers only as the experimental sessionPersistence. Fix: set gateway.httpRoute.sessionPersistence={sessionName: qs-gateway, type: Cookie} (experimental-channel CRDs), or gateway.transports={websocket} for websocket-only clients." -}}
{{- end -}}
{{- if not (or $gw.ingress.enabled $gw.httpRoute.enabled $clientIP) -}}
{{- fail "gateway: long-polling with more than one replica needs sticky sessions, and with no Ingress or HTTPRoute nothing pins a client to a pod. Fix: enable gateway.ingress (with gateway.stickySessions=true), set gateway.service.sessionAffinity=ClientIP if browsers reach the Service directly, or gateway.transports={websocket} for websocket-only clients." -}}
{{- end -}}
{{- end -}}
{{- if $gw.httpRoute.enabled -}}
{{- if not $gw.httpRoute.parentRefs -}}
{{- fail "gateway.httpRoute: enabled without parentRefs, so the route attaches to no Gateway. Fix: set gateway.httpRoute.parentRefs, e.g. [{name: public, namespace: gateway-system}]." -}}
{{- end -}}
{{- if not (.Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1/HTTPRoute") -}}
{{- fail "gateway.httpRoute: this cluster does not serve gateway.networking.k8s.io/v1 HTTPRoute. Fix: install the Gateway API CRDs (v1.0+) and an implementation first, or use gateway.ingress (with helm template, pass --api-versions gateway.networking.k8s.io/v1/HTTPRoute)." -}}
{{- end -}}
{{- end -}}
{{- $np := .Values.networkPolicy -}}
{{- $notifierPolicy := and .Values.notifier.enabled $np.notifier.enabled -}}
{{- if and (or $np.gateway.enabled $np.monitor.enabled $notifierPolicy) (not .Values.redis.enabled) (not $np.externalRedisEgress) -}}
{{- fail "networkPolicy: the gateway/monitor/notifier policies allow egress only to the in-chart Redis, but redis.enabled=false. Fix: set networkPolicy.externalRedisEgress to rules reaching your Redis, e.g. [{to: [{ipBlock: {cidr: 10.20.0.0/16}}], ports: [{port: 6379, protocol: TCP}]}]." -}}
{{- end -}}
{{- if and $np.gateway.enabled (not $np.ingressFrom) -}}
{{- fail "networkPolicy.gateway: networkPolicy.ingressFrom is empty, so no client could reach the gateway. Fix: list the ingress controller's pods/namespace there (or [{ipBlock: {cidr: 0.0.0.0/0}}] for a LoadBalancer Service)." -}}
{{- end -}}
{{- if and .Values.redis.sentinel.enabled (not .Values.redis.enabled) -}}
{{- fail "redis.sentinel: the in-chart Sentinel needs redis.enabled=true. Fix: set redis.enabled=true, or for an external Sentinel set redis.url=redis+sentinel://host:26379,host:26379/0/<master> and redis.sentinel.enabled=false." -}}
{{- end -}}
{{- $services := list "gateway" "monitor" -}}
{{- if .Values.notifier.enabled -}}
{{- $services = append $services "notifier" -}}
{{- end -}}
{{- range $component := $services -}}
{{- $v := index $.Values $component -}}
{{- if and (gt (int $v.metricsPort) 0) (eq (int $v.metricsPort) (int $v.port)) -}}
{{- fail (printf "%s: metricsPort equals port. Fix: give %s.metricsPort another port (9090), or 0 to serve /metrics and the probes on %s.port." $component $component $component) -}}
{{- end -}}
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
{{- if .Values.notifier.enabled -}}
{{- $seen := dict -}}
{{- range $i, $d := .Values.notifier.destinations -}}
{{- if hasKey $seen $d.name -}}
{{- fail (printf "notifier.destinations[%d].name: %q is used twice. Fix: give every destination its own name (it names the consumer group, the lease and the metrics label)." $i $d.name) -}}
{{- end -}}
{{- $_ := set $seen $d.name true -}}
{{- end -}}
{{- end -}}
{{- $monitoring := or .Values.metrics.serviceMonitor.enabled .Values.metrics.prometheusRule.enabled -}}
{{- if and $monitoring (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
{{- fail "metrics: serviceMonitor/prometheusRule need the Prometheus Operator CRDs (monitoring.coreos.com/v1), which this cluster does not serve. Fix: install the Prometheus Operator (e.g. kube-prometheus-stack) first, or set metrics.serviceMonitor.enabled=false and metrics.prometheusRule.enabled=false (with helm template, pass --api-versions monitoring.coreos.com/v1)." -}}
{{- end -}}
{{- end -}}

{{/* Env of the Redis and Sentinel containers: password and, with Sentinel, the set's names. (list $ "yes") */}}
{{- define "qs.redisServerEnv" -}}
{{- $root := index . 0 -}}
{{- $redis := $root.Values.redis -}}
{{- if $redis.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.auth.existingSecret }}
      key: {{ $redis.auth.existingSecretKey }}
- name: REDISCLI_AUTH
  valueFrom:
    secretKeyRef:
      name: {{ $redis.auth.existingSecret }}
      key: {{ $redis.auth.existingSecretKey }}
{{- end }}
{{- if $redis.sentinel.enabled }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: HEADLESS
  value: {{ include "qs.redisHeadless" $root | quote }}
- name: MASTER_SET
  value: {{ $redis.sentinel.masterSet | quote }}
- name: QUORUM
  value: {{ $redis.sentinel.quorum | quote }}
- name: DOWN_AFTER_MS
  value: {{ $redis.sentinel.downAfterMilliseconds | quote }}
- name: FAILOVER_TIMEOUT_MS
  value: {{ $redis.sentinel.failoverTimeout | quote }}
- name: APPENDONLY
  value: {{ index . 1 | quote }}
- name: APPENDFSYNC
  value: {{ $redis.persistence.appendfsync | quote }}
{{- end }}
{{- end -}}

{{/* Egress every service needs: DNS and Redis (in-chart pods, or networkPolicy.externalRedisEgress). */}}
{{- define "qs.commonEgress" -}}
{{- $np := .Values.networkPolicy -}}
- to:
    {{- toYaml $np.dnsTo | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if .Values.redis.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "qs.selectorLabels" (list . "redis") | nindent 10 }}
  ports:
    - port: 6379
      protocol: TCP
    {{- if .Values.redis.sentinel.enabled }}
    - port: 26379
      protocol: TCP
    {{- end }}
{{- else }}
{{- toYaml $np.externalRedisEgress | nindent 0 }}
{{- end }}
{{- end -}}

{{/* Notifier ----------------------------------------------------------------------- */}}

{{/* Where the destinations file is mounted (NOTIFIER_CONFIG; the service's default). */}}
{{- define "qs.notifierConfigPath" -}}
/etc/quantum-signals/notifier.yaml
{{- end -}}

{{/* The ConfigMap holding the destinations file. */}}
{{- define "qs.notifierDestinationsName" -}}
{{- printf "%s-destinations" (include "qs.componentName" (list . "notifier")) -}}
{{- end -}}
