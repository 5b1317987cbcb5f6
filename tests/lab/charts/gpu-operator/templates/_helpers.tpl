{{- define "gpu-operator.labels" -}}
app.kubernetes.io/name: gpu-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gpu-operator.version" -}}
{{ .Values.operator.version | default .Chart.AppVersion }}
{{- end -}}

{{- define "nfd.fullname" -}}
{{ printf "%s-node-feature-discovery" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "nfd.labels" -}}
app.kubernetes.io/name: node-feature-discovery
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
