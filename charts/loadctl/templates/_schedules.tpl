{{/*
Where a controller pod writes its results/<run id>/ folders: the results volume's mount path and
the `--results-dir` of `loadctl run`, one fact.
*/}}
{{- define "loadctl.resultsPath" -}}
/opt/loadctl/results
{{- end }}

{{/*
Where a schedule's own files (schedules[].files or schedules[].configMap) are mounted.
*/}}
{{- define "loadctl.scheduleFilesPath" -}}
/etc/loadctl/schedule
{{- end }}

{{/*
The ConfigMap rendered from one schedule's files. Usage: include "loadctl.scheduleFilesName" (list $ schedule)
*/}}
{{- define "loadctl.scheduleFilesName" -}}
{{- include "loadctl.componentName" (list (index . 0) (printf "%s-files" (index . 1).name)) }}
{{- end }}

{{/*
The ConfigMap mounted at scheduleFilesPath for one schedule, or nothing when its test is in the
image. Usage: include "loadctl.scheduleConfigMap" (list $ schedule)
*/}}
{{- define "loadctl.scheduleConfigMap" -}}
{{- $schedule := index . 1 }}
{{- if $schedule.files }}
{{- include "loadctl.scheduleFilesName" . }}
{{- else if $schedule.configMap }}
{{- $schedule.configMap }}
{{- end }}
{{- end }}

{{/*
A file a schedule names (its profile, its gates): inside the mounted files when it has them,
else as written (a profile name or a path in the image).
Usage: include "loadctl.scheduleFile" (list $ schedule .profile)
*/}}
{{- define "loadctl.scheduleFile" -}}
{{- if include "loadctl.scheduleConfigMap" (list (index . 0) (index . 1)) }}
{{- printf "%s/%s" (include "loadctl.scheduleFilesPath" (index . 0)) (index . 2) }}
{{- else }}
{{- index . 2 }}
{{- end }}
{{- end }}

{{/*
Fails the render, naming the schedule and the field, when its own test is given twice, or a file
it names is not in its files. Renders nothing. Usage: include "loadctl.validateSchedule" schedule
*/}}
{{- define "loadctl.validateSchedule" -}}
{{- if and .files .configMap }}
{{- fail (printf "schedules %s: give files or configMap, not both: the schedule's test comes from one of them" .name) }}
{{- end }}
{{- if or .files .configMap }}
{{- range $field := list "profile" "gates" }}
{{- $file := get $ $field }}
{{- if and $file (not (regexMatch "^[-._a-zA-Z0-9]+$" $file)) }}
{{- fail (printf "schedules %s: %s %q: with files or configMap, %s names a file in them (no directories)" $.name $field $file $field) }}
{{- end }}
{{- if and $file $.files (not (hasKey $.files $file)) }}
{{- fail (printf "schedules %s: files has no %q: with files, %s names one of them (have: %s)" $.name $file $field (keys $.files | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The claim mounted at resultsPath when results.persistence.enabled.
*/}}
{{- define "loadctl.resultsClaimName" -}}
{{- .Values.results.persistence.existingClaim | default (include "loadctl.componentName" (list . "results")) }}
{{- end }}
