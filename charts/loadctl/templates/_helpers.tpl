{{/*
Chart name, truncated to 63 chars (Kubernetes names and label values).
*/}}
{{- define "loadctl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 chars. A release name that already contains the chart
name is used as is.
*/}}
{{- define "loadctl.fullname" -}}
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

{{/*
"<fullname>-<suffix>", the fullname shortened so the whole name fits in 63 chars, or in the
optional third argument (52 for CronJobs: their Jobs append 11 chars).
Usage: include "loadctl.componentName" (list . "master") / (list . "nightly" 52)
*/}}
{{- define "loadctl.componentName" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 | toString }}
{{- $max := 63 }}
{{- if gt (len .) 2 }}{{ $max = index . 2 | int }}{{ end }}
{{- $room := sub $max (add1 (len $suffix)) | int }}
{{- if lt $room 1 }}{{ $room = 1 }}{{ end }}
{{- $base := include "loadctl.fullname" $ctx | trunc $room | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix | trunc $max | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "loadctl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: which app and which release.
*/}}
{{- define "loadctl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loadctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels of every object.
*/}}
{{- define "loadctl.labels" -}}
helm.sh/chart: {{ include "loadctl.chart" . }}
{{ include "loadctl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: loadctl
{{- end }}

{{/*
Selector labels of one component. Usage: include "loadctl.componentSelectorLabels" (list . "master")
*/}}
{{- define "loadctl.componentSelectorLabels" -}}
{{ include "loadctl.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
Common labels plus the component. Usage: include "loadctl.componentLabels" (list . "worker")
*/}}
{{- define "loadctl.componentLabels" -}}
{{ include "loadctl.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
Labels of the run's objects and pods: which run and which profile.
*/}}
{{- define "loadctl.runLabels" -}}
loadctl.io/run-id: {{ .Values.run.id | quote }}
loadctl.io/profile: {{ .Values.run.profile | quote }}
{{- end }}

{{/*
Object names.
*/}}
{{- define "loadctl.masterName" -}}
{{- include "loadctl.componentName" (list . "master") }}
{{- end }}

{{- define "loadctl.workerName" -}}
{{- include "loadctl.componentName" (list . "worker") }}
{{- end }}

{{- define "loadctl.runConfigName" -}}
{{- include "loadctl.componentName" (list . "run") }}
{{- end }}

{{- define "loadctl.controllerName" -}}
{{- include "loadctl.componentName" (list . "controller") }}
{{- end }}

{{/*
ServiceAccount of the scheduled controller pods.
*/}}
{{- define "loadctl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "loadctl.controllerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "loadctl.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Fails the render with a clear message when a run is enabled without what it needs. Renders nothing.
*/}}
{{- define "loadctl.validateRun" -}}
{{- $_ := required "run.id is required when run.enabled: the run_id label of every series (e.g. --set run.id=checkout-20250101-0200)" .Values.run.id }}
{{- $_ = required "run.host is required when run.enabled: the target base URL (e.g. --set run.host=https://staging.example.com)" .Values.run.host }}
{{- if not .Values.run.stages }}
{{- fail "run.stages needs at least one stage when run.enabled, e.g. [{duration: 300, users: 50, spawnRate: 5}]" }}
{{- end }}
{{- if and .Values.run.probes (hasKey .Values.run.files "probes.json") }}
{{- fail "run.files has a probes.json: with run.probes that name is the probes sidecar's config, rename the file" }}
{{- end }}
{{- if not (hasKey .Values.run.files .Values.run.locustfile) }}
{{- fail (printf "run.files has no %q: run.locustfile must name one of run.files (have: %s)" .Values.run.locustfile (keys .Values.run.files | sortAlpha | join ", " | default "none")) }}
{{- end }}
{{- end }}

{{/*
Locust's -f value: the run's locustfile (ConfigMap) plus loadctl's plugin (in the image).
*/}}
{{- define "loadctl.locustfileArg" -}}
{{- printf "/etc/loadctl/run/%s,/opt/loadctl/locust_workers/plugin.py" .Values.run.locustfile }}
{{- end }}

{{/*
The user's own Locust arguments and user classes, last on the master's and the workers' command
lines (locust_workers/contract.py LocustCommand._user_args), as list items at the args' indent.
*/}}
{{- define "loadctl.userArgs" -}}
{{- range .Values.run.locustArgs }}
- {{ . | quote }}
{{- end }}
{{- with .Values.run.userClasses }}
- "--"
{{- range . }}
- {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The stage table as locust_workers/shapes.py parses it: JSON with snake_case spawn_rate.
*/}}
{{- define "loadctl.stagesJson" -}}
{{- $rows := list }}
{{- range .Values.run.stages }}
{{- $rows = append $rows (dict "duration" .duration "users" (int .users) "spawn_rate" .spawnRate "phase" (default "steady" .phase)) }}
{{- end }}
{{- toJson $rows }}
{{- end }}

{{/*
activeDeadlineSeconds of both Jobs: the stage table's total duration (rounded up) plus the grace.
*/}}
{{- define "loadctl.activeDeadlineSeconds" -}}
{{- $total := 0.0 }}
{{- range .Values.run.stages }}
{{- $total = addf $total .duration }}
{{- end }}
{{- add (ceil $total | int) (int .Values.run.deadlineGraceSeconds) }}
{{- end }}

{{/*
Environment every Locust process of the run reads (locust_workers/plugin.py).
*/}}
{{- define "loadctl.runEnv" -}}
- name: LOADCTL_RUN_ID
  value: {{ .Values.run.id | quote }}
- name: LOADCTL_PROFILE
  value: {{ .Values.run.profile | quote }}
- name: LOADCTL_EXPORTER_HOST
  value: "0.0.0.0"
- name: LOADCTL_EXPORTER_PORT
  value: {{ .Values.run.exporterPort | int | quote }}
- name: LOADCTL_STAGES
  value: {{ include "loadctl.stagesJson" . | quote }}
- name: LOADCTL_USER_WEIGHTS
  value: {{ toJson .Values.run.userWeights | quote }}
- name: LOADCTL_FINAL_SCRAPE_TIMEOUT
  value: {{ .Values.run.finalScrapeTimeoutSeconds | toString | quote }}
- name: LOADCTL_LOCUST_FILES_TIMEOUT
  value: {{ .Values.run.locustFilesTimeoutSeconds | toString | quote }}
- name: LOADCTL_LATENCY_BUCKETS
  value: {{ .Values.run.latencyBuckets | quote }}
{{- with .Values.run.gateThresholds }}
- name: LOADCTL_GATE_THRESHOLDS
  value: {{ . | quote }}
{{- end }}
{{- with .Values.run.heartbeat }}
{{- if .lease }}
- name: LOADCTL_HEARTBEAT_LEASE
  value: {{ .lease | quote }}
- name: LOADCTL_HEARTBEAT_TIMEOUT
  value: {{ .timeoutSeconds | int | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Environment of every loadctl container: Python settings for a read-only root filesystem, then
the user's secretEnv and extraEnv.
*/}}
{{- define "loadctl.commonEnv" -}}
- name: PYTHONUNBUFFERED
  value: "1"
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: HOME
  value: /tmp
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Container fields shared by master and worker: image, env, mounts, security.
*/}}
{{- define "loadctl.runContainerCommon" -}}
image: {{ include "loadctl.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
env:
  {{- include "loadctl.runEnv" . | nindent 2 }}
  {{- include "loadctl.commonEnv" . | nindent 2 }}
{{- with .Values.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
# Locust runs where the run's files are, as it runs in the user's folder locally: relative data
# files and sibling modules resolve the same way.
workingDir: /etc/loadctl/run
volumeMounts:
  - name: run-files
    mountPath: /etc/loadctl/run
    readOnly: true
  - name: tmp
    mountPath: /tmp
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "loadctl.runVolumes" -}}
volumes:
  - name: run-files
    configMap:
      name: {{ include "loadctl.runConfigName" . }}
  - name: tmp
    emptyDir: {}
{{- end }}

{{/*
"true" when the master pod carries the prometheus.io/* scrape annotations, else empty.
master.scrapeAnnotations true/false forces it; "auto" (the default) sets them only when neither a
ServiceMonitor nor a PodMonitor scrapes the exporter: two scrape paths double every counter sum.
*/}}
{{- define "loadctl.scrapeAnnotations" -}}
{{- $forced := .Values.master.scrapeAnnotations }}
{{- if kindIs "bool" $forced }}
{{- if $forced }}true{{ end }}
{{- else if not (or .Values.serviceMonitor.enabled .Values.podMonitor.enabled) }}
{{- print "true" }}
{{- end }}
{{- end }}

{{/*
Relabelings of the ServiceMonitor/PodMonitor: the pod's loadctl.io/run-id label as the run_id
target label. Every exporter series already carries run_id (honorLabels keeps the exporter's);
this puts the run on target-level series such as `up` too, and adds no other label.
*/}}
{{- define "loadctl.runIdRelabeling" -}}
- sourceLabels: [__meta_kubernetes_pod_label_loadctl_io_run_id]
  targetLabel: run_id
  action: replace
{{- end }}
