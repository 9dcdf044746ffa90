{{/* Chart name, truncated for label values. */}}
{{- define "model-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 30 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name. At most 40 characters: KServe appends `-stable-transformer`
(19) and the result must stay a DNS-1035 label (63).
*/}}
{{- define "model-serving.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "model-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels on every resource. */}}
{{- define "model-serving.labels" -}}
helm.sh/chart: {{ include "model-serving.chart" . }}
{{ include "model-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "model-serving.name" . }}
{{- end }}

{{- define "model-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Names of things KServe and the chart create. Argument: dict "root" . "track" "stable"|"canary". */}}
{{- define "model-serving.isvcName" -}}
{{- printf "%s-%s" (include "model-serving.fullname" .root) .track }}
{{- end }}

{{/* The Service KServe (Standard mode) creates for a component: `<isvc>-<component>`. */}}
{{- define "model-serving.componentHost" -}}
{{- printf "%s-%s.%s.svc.cluster.local" (include "model-serving.isvcName" .) .component .root.Release.Namespace }}
{{- end }}

{{/* The Service the VirtualService routes a track to: the transformer's, or the predictor's without one. */}}
{{- define "model-serving.entryHost" -}}
{{- $component := ternary "transformer" "predictor" .root.Values.transformer.enabled }}
{{- include "model-serving.componentHost" (dict "root" .root "track" .track "component" $component) }}
{{- end }}

{{- define "model-serving.driftName" -}}
{{- printf "%s-drift-detector" (include "model-serving.fullname" .) }}
{{- end }}

{{- define "model-serving.loggerUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local%s" (include "model-serving.driftName" .) .Release.Namespace .Values.driftDetector.path }}
{{- end }}

{{/*
Who payload-logs the predictor's traffic: "agent" (KServe's agent in front of the predictor sees
REST calls), "predictor" (the transformer calls over gRPC, which the agent cannot see: the
predictor's own --logger_url) or "" (logging off).
*/}}
{{- define "model-serving.payloadLogger" -}}
{{- $v := .Values }}
{{- if $v.logger.enabled }}
{{- ternary "predictor" "agent" (and $v.transformer.enabled (eq $v.transformer.predictorProtocol "grpc-v2")) }}
{{- end }}
{{- end }}

{{/*
logger.metadataHeaders in Go's canonical form (`x-model-serving-caller` -> `X-Model-Serving-Caller`):
KServe's agent matches them with slices.Contains against Go's canonicalised request header keys.
One name per line.
*/}}
{{- define "model-serving.metadataHeaders" -}}
{{- range .Values.logger.metadataHeaders }}
{{ lower . | title }}
{{- end }}
{{- end }}

{{- define "model-serving.rolloutName" -}}
{{- printf "%s-rollout" (include "model-serving.fullname" .) }}
{{- end }}

{{- define "model-serving.image" -}}
{{- printf "%s:%s" .repository .tag }}
{{- end }}

{{/* Restricted container securityContext (Pod Security Standards "restricted"). */}}
{{- define "model-serving.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "model-serving.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Probes of KServe model servers. Argument: the model name. */}}
{{- define "model-serving.v2Probes" -}}
readinessProbe:
  httpGet:
    path: /v2/models/{{ . }}/ready
    port: 8080
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /v2/health/live
    port: 8080
  initialDelaySeconds: 10
  periodSeconds: 10
  failureThreshold: 3
startupProbe:
  httpGet:
    path: /v2/health/live
    port: 8080
  periodSeconds: 5
  failureThreshold: 60
{{- end }}

{{/* Writable scratch space; the root filesystem is read-only. */}}
{{- define "model-serving.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
{{- define "model-serving.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{/* The ServiceAccount every component runs as unless its own serviceAccountName is set. */}}
{{- define "model-serving.serviceAccountName" -}}
{{- default (printf "%s-models" (include "model-serving.fullname" .)) .Values.serviceAccount.name }}
{{- end }}

{{/* ServiceAccount of one component. Argument: dict "root" . "component" "predictor"|"transformer"|"explainer"|"driftDetector". */}}
{{- define "model-serving.componentServiceAccount" -}}
{{- $own := (index .root.Values .component).serviceAccountName }}
{{- default (include "model-serving.serviceAccountName" .root) $own }}
{{- end }}

{{/* The in-cluster host of the VirtualService (bound to the `mesh` gateway). */}}
{{- define "model-serving.meshHost" -}}
{{- default (printf "%s.%s.svc.cluster.local" (include "model-serving.fullname" .) .Release.Namespace) .Values.traffic.mesh.host }}
{{- end }}

{{/* The chart's own Gateway, as the VirtualService names it. */}}
{{- define "model-serving.gatewayRef" -}}
{{- printf "%s/%s" .Release.Namespace (include "model-serving.fullname" .) }}
{{- end }}

{{/*
Weights of the `primary` route as JSON {"stable": N, "canary": N, "source": ...}:
- traffic.weights set (any key): those, the missing one from the install defaults 90/10 ("values");
- else the live VirtualService's `primary` route when it has both destinations, so that
  `helm upgrade` keeps what the rollout CLI set ("live"; `lookup` is empty under `helm template`);
- else 90/10 ("default").
*/}}
{{- define "model-serving.weights" -}}
{{- $w := dict "stable" 90 "canary" 10 "source" "default" }}
{{- if .Values.traffic.weights }}
{{- $_ := set $w "source" "values" }}
{{- range $k, $n := .Values.traffic.weights }}{{- $_ := set $w $k $n }}{{- end }}
{{- else }}
{{- $live := lookup "networking.istio.io/v1" "VirtualService" .Release.Namespace (include "model-serving.fullname" .) }}
{{- $stableHost := include "model-serving.entryHost" (dict "root" . "track" "stable") }}
{{- $canaryHost := include "model-serving.entryHost" (dict "root" . "track" "canary") }}
{{- $found := dict }}
{{- range (dig "spec" "http" list $live) }}
{{- if eq (default "" .name) "primary" }}
{{- range .route }}
{{- $host := dig "destination" "host" "" . }}
{{- if eq $host $stableHost }}{{- $_ := set $found "stable" (int (default 0 .weight)) }}{{- end }}
{{- if eq $host $canaryHost }}{{- $_ := set $found "canary" (int (default 0 .weight)) }}{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (hasKey $found "stable") (hasKey $found "canary") (eq (add $found.stable $found.canary) 100) }}
{{- $w = dict "stable" $found.stable "canary" $found.canary "source" "live" }}
{{- end }}
{{- end }}
{{- toJson $w }}
{{- end }}

{{/* Sidecar-free pods (the rollout Job talks only to the API server and Prometheus). */}}
{{- define "model-serving.noSidecar" -}}
sidecar.istio.io/inject: "false"
{{- end }}

{{/*
Istio metrics merging: the sidecar injector reads these, points them at the pilot-agent's
:15020/stats/prometheus and serves the server's own /metrics (fetched from localhost:8080,
never through KServe's agent) merged with Envoy's there, in plain HTTP outside mTLS.
*/}}
{{- define "model-serving.metricsAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: "8080"
prometheus.io/path: /metrics
{{- end }}

{{/* One PodMonitor endpoint on Istio's merged metrics (:15020). Argument: dict "interval" "extra" (relabelings). */}}
{{- define "model-serving.mergedMetricsEndpoint" -}}
- port: http-envoy-prom
  path: /stats/prometheus
  scheme: http
  interval: {{ .interval }}
  relabelings:
    - sourceLabels: [__address__]
      regex: '(.+):\d+'
      replacement: '$1:15020'
      targetLabel: __address__
      action: replace
    {{- toYaml .extra | nindent 4 }}
{{- end }}

{{/* NetworkPolicy peer: pods of the namespaces named (a list). */}}
{{- define "model-serving.namespacesPeer" -}}
- namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values: {{ toJson . }}
{{- end }}

{{- define "model-serving.scrapePorts" -}}
# Istio's merged metrics (pilot-agent) and Envoy's own stats: what the PodMonitors scrape
- {port: 15020, protocol: TCP}
- {port: 15090, protocol: TCP}
{{- end }}

{{/*
Drain (issue 15): the process answers readiness 503 at once on SIGTERM, serves on for
hardening.drainSeconds, then stops gracefully within hardening.graceSeconds; the pod's grace period
covers both (+5 s), and the Istio sidecar drains as long (its default, 5 s, would cut requests).
*/}}
{{- define "model-serving.terminationGrace" -}}
{{- add (int .Values.hardening.drainSeconds) (int .Values.hardening.graceSeconds) 5 }}
{{- end }}

{{- define "model-serving.drainAnnotations" -}}
proxy.istio.io/config: {{ printf "{\"terminationDrainDuration\": \"%ds\"}" (add (int .Values.hardening.drainSeconds) (int .Values.hardening.graceSeconds)) | squote }}
{{- end }}

{{/* The predictor's hardening settings (env). */}}
{{- define "model-serving.predictorHardeningEnv" -}}
{{- $h := .Values.hardening }}
- name: PREDICTOR_MAX_BODY_BYTES
  value: {{ $h.maxBodyBytes | int | quote }}
- name: PREDICTOR_MAX_HEADERS
  value: {{ $h.maxHeaders | int | quote }}
- name: PREDICTOR_MAX_HEADER_BYTES
  value: {{ $h.maxHeaderBytes | int | quote }}
- name: PREDICTOR_BODY_TIMEOUT_SECONDS
  value: {{ $h.bodyTimeoutSeconds | quote }}
- name: PREDICTOR_MAX_INFLIGHT
  value: {{ $h.maxInflight | int | quote }}
- name: PREDICTOR_GRPC_MAX_INFLIGHT
  value: {{ $h.maxInflight | int | quote }}
- name: PREDICTOR_DRAIN_SECONDS
  value: {{ $h.drainSeconds | int | quote }}
- name: PREDICTOR_GRACE_SECONDS
  value: {{ $h.graceSeconds | int | quote }}
{{- end }}

{{/* The drift detector's hardening settings (env); the allow-list names this release's InferenceServices. */}}
{{- define "model-serving.driftHardeningEnv" -}}
{{- $h := .Values.hardening }}
- name: DRIFT_MAX_BODY_BYTES
  value: {{ $h.maxBodyBytes | int | quote }}
- name: DRIFT_MAX_HEADERS
  value: {{ $h.maxHeaders | int | quote }}
- name: DRIFT_MAX_HEADER_BYTES
  value: {{ $h.maxHeaderBytes | int | quote }}
- name: DRIFT_BODY_TIMEOUT_SECONDS
  value: {{ $h.bodyTimeoutSeconds | quote }}
- name: DRIFT_DRAIN_SECONDS
  value: {{ $h.drainSeconds | int | quote }}
- name: DRIFT_GRACE_SECONDS
  value: {{ $h.graceSeconds | int | quote }}
- name: DRIFT_STREAM_IDLE_SECONDS
  value: {{ $h.streamIdleSeconds | quote }}
{{- if $h.driftAllowList }}
{{- $names := list (include "model-serving.isvcName" (dict "root" . "track" "stable")) }}
{{- if .Values.canary.enabled }}
{{- $names = append $names (include "model-serving.isvcName" (dict "root" . "track" "canary")) }}
{{- end }}
- name: DRIFT_INFERENCE_SERVICES
  value: {{ toJson $names | quote }}
{{- end }}
{{- end }}

{{/* Drain and limits of the transformer / explainer (env). Argument: dict "root" . "prefix" "TRANSFORMER_". */}}
{{- define "model-serving.frontHardeningEnv" -}}
{{- $h := .root.Values.hardening }}
- name: {{ .prefix }}MAX_HEADERS
  value: {{ $h.maxHeaders | int | quote }}
- name: {{ .prefix }}MAX_HEADER_BYTES
  value: {{ $h.maxHeaderBytes | int | quote }}
- name: {{ .prefix }}BODY_TIMEOUT_SECONDS
  value: {{ $h.bodyTimeoutSeconds | quote }}
- name: {{ .prefix }}DRAIN_SECONDS
  value: {{ $h.drainSeconds | int | quote }}
- name: {{ .prefix }}GRACE_SECONDS
  value: {{ $h.graceSeconds | int | quote }}
{{- end }}
