{{/* Enabled shims, space separated, in name order (the real chart's rule). */}}
{{- define "kata-deploy.enabledShims" -}}
{{- $disableAll := .Values.shims.disableAll | default false -}}
{{- $enabled := list -}}
{{- range $name, $cfg := .Values.shims -}}
{{- if ne $name "disableAll" -}}
{{- $on := false -}}
{{- if kindIs "map" $cfg -}}
{{- if eq (toString $cfg.enabled) "true" -}}
{{- $on = true -}}
{{- else if eq (toString $cfg.enabled) "false" -}}
{{- $on = false -}}
{{- else if not $disableAll -}}
{{- $on = true -}}
{{- end -}}
{{- end -}}
{{- if $on -}}
{{- $enabled = append $enabled $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join " " $enabled -}}
{{- end -}}

{{- define "kata-deploy.labels" -}}
app.kubernetes.io/name: kata-deploy
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* A reference with a digest (`@sha256:...`) is used as it is, as in the real chart. */}}
{{- define "kata-deploy.image" -}}
{{- if contains "@" .Values.image.reference -}}
{{ .Values.image.reference }}
{{- else -}}
{{ .Values.image.reference }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The real chart's rule: the reference alone with a digest or an empty tag. */}}
{{- define "kata-deploy.kubectlImage" -}}
{{- $tag := .Values.kubectlImage.tag | toString -}}
{{- if or (contains "@" .Values.kubectlImage.reference) (eq $tag "") -}}
{{ .Values.kubectlImage.reference }}
{{- else -}}
{{ .Values.kubectlImage.reference }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* Where the distribution keeps containerd's configuration (the real helper's choice). */}}
{{- define "kata-deploy.containerdConfPath" -}}
{{- $d := .Values.k8sDistribution | default "k8s" -}}
{{- if .Values.containerd.configDir -}}{{ .Values.containerd.configDir }}
{{- else if eq $d "rke2" -}}/var/lib/rancher/rke2/agent/etc/containerd/
{{- else if eq $d "k3s" -}}/var/lib/rancher/k3s/agent/etc/containerd/
{{- else if eq $d "k0s" -}}/etc/k0s/
{{- else if eq $d "microk8s" -}}/var/snap/microk8s/current/args/
{{- else -}}/etc/containerd/
{{- end -}}
{{- end -}}
