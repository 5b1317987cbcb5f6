"""Reaching the cluster the operator's kubeconfig names and reading it: the kubeconfig and its
credentials, the API client, what the API server's refusals mean, the discovered facts (nodes,
releases, hosts) and pod readings. Knows nothing of charts, plans or screens.
"""
