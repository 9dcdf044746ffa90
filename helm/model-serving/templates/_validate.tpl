{{/*
Checks the schema cannot express (or that must hold even with --skip-schema-validation).
Each failure names the value and what would be accepted.
*/}}
{{- define "model-serving.validate" -}}
{{- $v := .Values }}
{{- $w := include "model-serving.weights" . | fromJson }}
{{- range $k, $n := pick $w "stable" "canary" }}
{{- if or (lt (int $n) 0) (gt (int $n) 100) }}
{{- fail (printf "traffic.weights.%s is %v; a weight must be between 0 and 100" $k $n) }}
{{- end }}
{{- end }}
{{- if and $v.canary.enabled (ne (add (int $w.stable) (int $w.canary)) 100) }}
{{- fail (printf "traffic.weights.stable (%v) + traffic.weights.canary (%v) = %v; the weights must sum to 100" $w.stable $w.canary (add (int $w.stable) (int $w.canary))) }}
{{- end }}
{{- range $track := list "stable" "canary" }}
{{- $t := index $v $track }}
{{- if lt (int $t.minReplicas) 0 }}
{{- fail (printf "%s.minReplicas is %v; replicas cannot be negative" $track $t.minReplicas) }}
{{- end }}
{{- if lt (int $t.maxReplicas) (int $t.minReplicas) }}
{{- fail (printf "%s.maxReplicas (%v) is below %s.minReplicas (%v)" $track $t.maxReplicas $track $t.minReplicas) }}
{{- end }}
{{- end }}
{{- if lt (int $v.driftDetector.replicas) 0 }}
{{- fail (printf "driftDetector.replicas is %v; replicas cannot be negative" $v.driftDetector.replicas) }}
{{- end }}
{{- if and (gt (float64 $v.traffic.mirrorPercent) 0.0) (not $v.canary.enabled) }}
{{- fail "traffic.mirrorPercent > 0 shadows traffic to the canary: set canary.enabled=true or mirrorPercent=0" }}
{{- end }}
{{- if and $v.logger.enabled (not $v.driftDetector.enabled) }}
{{- fail "logger.enabled sends payloads to the drift detector: set driftDetector.enabled=true or logger.enabled=false" }}
{{- end }}
{{- if and $v.logger.enabled (ne $v.logger.mode "all") }}
{{- fail (printf "logger.mode is %s; the drift detector admits a request's rows only once its 200 response event arrived, so it needs both events: logger.mode=all" $v.logger.mode) }}
{{- end }}
{{- $headers := splitList "\n" (include "model-serving.metadataHeaders" . | trim) }}
{{- if and $v.logger.enabled (not (has "X-Model-Serving-Caller" $headers)) }}
{{- fail (printf "logger.metadataHeaders is %v; it must include X-Model-Serving-Caller, the header by which the drift detector ignores the explainer's calls" $v.logger.metadataHeaders) }}
{{- end }}
{{- if not (or $v.traffic.gateway.create $v.traffic.gateways) }}
{{- fail "traffic.gateway.create is false and traffic.gateways is empty: the VirtualService would be bound to no ingress gateway (Istio and KServe create none the chart could assume); set traffic.gateway.create=true or traffic.gateways=[<namespace>/<gateway>]" }}
{{- end }}
{{- $pvc := $v.storage.pvc }}
{{- if and $pvc.create (not (or (has "ReadOnlyMany" $pvc.accessModes) (has "ReadWriteMany" $pvc.accessModes))) }}
{{- fail (printf "storage.pvc.accessModes is %v; every replica of every component mounts the bundle claim, from any node: it needs ReadOnlyMany or ReadWriteMany" $pvc.accessModes) }}
{{- end }}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) }}
{{- fail "serviceAccount.create is false and serviceAccount.name is empty: name the existing ServiceAccount the components run as" }}
{{- end }}
{{- if and $v.rollout.job.enabled (not $v.rollout.rbac) }}
{{- fail "rollout.job.enabled runs the rollout CLI as the release's rollout ServiceAccount: set rollout.rbac=true or rollout.job.enabled=false" }}
{{- end }}
{{- if and $v.security.jwt.enabled (or (not $v.security.jwt.issuer) (not $v.security.jwt.jwksUri)) }}
{{- fail "security.jwt.enabled needs security.jwt.issuer and security.jwt.jwksUri" }}
{{- end }}
{{- end }}
