{{/* Names --------------------------------------------------------------------------------------------- */}}
{{- define "graylane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "graylane.fullname" -}}
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

{{- define "graylane.operator.fullname" -}}{{ include "graylane.fullname" . }}-operator{{- end }}
{{- define "graylane.proxy.fullname" -}}{{ include "graylane.fullname" . }}-proxy{{- end }}

{{/* Labels -------------------------------------------------------------------------------------------- */}}
{{- define "graylane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "graylane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: graylane
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "graylane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "graylane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "graylane.operator.selectorLabels" -}}
{{ include "graylane.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "graylane.proxy.selectorLabels" -}}
{{ include "graylane.selectorLabels" . }}
app.kubernetes.io/component: proxy
{{- end }}

{{/* Watched namespaces: a list, or empty in all-namespaces mode -------------------------------------- */}}
{{- define "graylane.watchedNamespaces" -}}
{{- if .Values.watch.allNamespaces }}
{{- if .Values.watch.namespaces }}
{{- fail "watch.allNamespaces=true cannot be combined with a watch.namespaces list: choose one" }}
{{- end }}
{{- else if .Values.watch.namespaces }}
{{- toJson (uniq .Values.watch.namespaces) }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/* Image reference ----------------------------------------------------------------------------------- */}}
{{- define "graylane.image" -}}
{{- $img := index . 0 }}{{- $ctx := index . 1 }}
{{- printf "%s:%s" $img.repository (default $ctx.Chart.AppVersion $img.tag) }}
{{- end }}

{{/* Pod Security "restricted": the pod-level and container-level contexts (not configurable) ---------- */}}
{{- define "graylane.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "graylane.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Default affinity: prefer one replica per node ----------------------------------------------------- */}}
{{- define "graylane.spreadAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- .labels | nindent 12 }}
{{- end }}

{{/* Command lines: the only place the chart spells the binaries' flags -------------------------------- */}}
{{- define "graylane.operator.args" -}}
- --config-namespace={{ .Release.Namespace }}
{{- if .Values.gatewayAPI.enabled }}
- --gateway-api
- --gateway-proxy-template={{ include "graylane.proxy.fullname" . }}-gateway
{{- end }}
{{- if .Values.watch.allNamespaces }}
- --all-namespaces
{{- else }}
{{- range include "graylane.watchedNamespaces" . | fromJsonArray }}
- --namespace={{ . }}
{{- end }}
{{- end }}
- --peering={{ .Values.operator.peering.name }}
- --priority-from-pod-ip
- --liveness=http://0.0.0.0:{{ .Values.operator.healthPort }}/healthz
{{- if .Values.operator.watchCRDs }}
- --scan-cluster
{{- end }}
{{- if .Values.operator.discoverProxies }}
- --proxy-service={{ include "graylane.proxy.fullname" . }}-admin
{{- end }}
{{- if .Values.jwtSecrets.enabled }}
- --mirror-jwt-secrets
{{- end }}
{{- if .Values.tls.enabled }}
- --mirror-tls-secrets
{{- end }}
{{- with .Values.operator.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "graylane.proxy.args" -}}
- --kube
- --namespace={{ .Release.Namespace }}
- --listen=0.0.0.0:{{ .Values.proxy.port }}
- --admin-listen=0.0.0.0:{{ .Values.proxy.adminPort }}
{{ include "graylane.proxy.commonArgs" . }}
{{- end }}

{{/* What every proxy runs with, the chart's and each Gateway's (the operator adds where they listen) --- */}}
{{- define "graylane.proxy.commonArgs" -}}
- --workers={{ .Values.proxy.workers }}
- --drain-delay={{ .Values.proxy.drainDelaySeconds }}
- --drain-timeout={{ .Values.proxy.drainTimeoutSeconds }}
{{- range .Values.proxy.trustedProxies }}
- --trusted-proxy={{ . }}
{{- end }}
{{- if .Values.tls.enabled }}
- --listen-tls=0.0.0.0:{{ .Values.proxy.tls.port }}
- --https-redirect-port={{ .Values.proxy.service.tlsPort }}
{{- with .Values.proxy.tls.defaultSecret }}
- --default-tls-secret={{ . }}
{{- end }}
{{- else if .Values.proxy.tls.defaultSecret }}
{{- fail "proxy.tls.defaultSecret needs tls.enabled=true (the proxy serves HTTPS and reads Secrets only then)" }}
{{- end }}
{{- with .Values.proxy.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Operator rules in each watched namespace (a Role there, or the ClusterRole) ------------------------ */}}
{{- define "graylane.operator.watchRules" -}}
- apiGroups: [graylane.io]
  resources: [canaryroutes, upstreams]
  verbs: [get, list, watch, patch]
- apiGroups: [graylane.io]
  resources: [canaryroutes/status, upstreams/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.tls.enabled }}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
{{- else if .Values.jwtSecrets.enabled }}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
{{- end }}

{{/* The pod template of a Gateway's proxies (gateway-api.yaml): the proxy's image, account and limits ---- */}}
{{- define "graylane.gateway.podTemplate" -}}
{{- $p := .Values.proxy }}
metadata:
  labels:
    {{- include "graylane.labels" . | nindent 4 }}
spec:
  serviceAccountName: {{ include "graylane.proxy.fullname" . }}-gateway
  automountServiceAccountToken: true
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $p.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "graylane.podSecurityContext" . | nindent 4 }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: proxy
      image: {{ include "graylane.image" (list $p.image .) | quote }}
      imagePullPolicy: {{ $p.image.pullPolicy }}
      args:
        {{- include "graylane.proxy.commonArgs" . | nindent 8 }}
      ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        - {name: https, containerPort: 8443, protocol: TCP}
        - {name: admin, containerPort: 9901, protocol: TCP}
      readinessProbe:
        httpGet: {path: /readyz, port: admin}
        {{- toYaml $p.readinessProbe | nindent 8 }}
      livenessProbe:
        httpGet: {path: /healthz, port: admin}
        {{- toYaml $p.livenessProbe | nindent 8 }}
      resources:
        {{- toYaml $p.resources | nindent 8 }}
      securityContext:
        {{- include "graylane.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
{{- end }}
