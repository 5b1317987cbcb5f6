"""A small JSON-over-HTTPS client for the lab's own tooling (simulator, node and pod bulk work).

The kubeconfig is read by the `kubernetes` package (`kubernetes.config`); requests go straight
through urllib3 with plain dicts and explicit patch types. The generated `kubernetes` 37 client
picks `application/json-patch+json` for dict bodies unless told otherwise and builds pydantic
models for every object, which is slow for 10,000 pods; the lab needs neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class KubeError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        self.status = status
        self.body = body
        try:
            self.reason = json.loads(body).get("reason", "")
            message = json.loads(body).get("message", body)
        except ValueError:
            self.reason, message = "", body
        super().__init__(f"{method} {path}: {status} {message}")


class Kube:
    def __init__(self, kubeconfig: str | Path, pool_size: int = 32, timeout: float = 30) -> None:
        cfg = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.base = cfg.host.rstrip("/")
        self.timeout = timeout
        self.http = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            block=True,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            ca_certs=cfg.ssl_ca_cert,
            cert_reqs="CERT_REQUIRED",
            retries=False,
        )

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        params: dict | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> dict:
        url = self.base + path + (("?" + urlencode(params)) if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        r = self.http.request(
            method,
            url,
            body=data,
            headers=headers,
            timeout=timeout or self.timeout,
            preload_content=True,
        )
        text = r.data.decode(errors="replace")
        if r.status >= 400:
            raise KubeError(r.status, text, method, path)
        return json.loads(text) if text else {}

    def raw(self, path: str, timeout: float | None = None) -> tuple[int, str]:
        r = self.http.request("GET", self.base + path, timeout=timeout or self.timeout)
        return r.status, r.data.decode(errors="replace")

    def get(self, path: str, **params) -> dict:
        return self.request("GET", path, params=params or None)

    def get_or_none(self, path: str) -> dict | None:
        try:
            return self.get(path)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def list(self, path: str, **params) -> tuple[list[dict], str]:
        """All items (following `continue`) and the list's resourceVersion."""
        items: list[dict] = []
        params = {"limit": 500, **params}
        while True:
            out = self.get(path, **params)
            items += out.get("items") or []
            meta = out.get("metadata") or {}
            if not meta.get("continue"):
                return items, meta.get("resourceVersion", "")
            params["continue"] = meta["continue"]

    def create(self, path: str, obj: dict, exist_ok: bool = False) -> dict | None:
        try:
            return self.request("POST", path, obj)
        except KubeError as e:
            if exist_ok and e.status == 409:
                return None
            raise

    def patch(self, path: str, patch: dict, content_type: str = MERGE) -> dict:
        return self.request("PATCH", path, patch, content_type=content_type)

    def delete(self, path: str, missing_ok: bool = True, **params) -> dict | None:
        try:
            return self.request("DELETE", path, params=params or None)
        except KubeError as e:
            if missing_ok and e.status == 404:
                return None
            raise

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 240) -> Iterator[dict]:
        """Watch events ({type, object}) from `resource_version` until the server ends it."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        url = self.base + path + "?" + urlencode(params)
        r = self.http.request(
            "GET",
            url,
            headers={"Accept": "application/json"},
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=timeout_seconds + 30),
        )
        try:
            if r.status >= 400:
                raise KubeError(r.status, r.read().decode(errors="replace"), "WATCH", path)
            buf = b""
            for chunk in r.stream(65536):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            r.release_conn()
