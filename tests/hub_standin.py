"""A local stand-in for the Hugging Face Hub: the few endpoints ``huggingface_hub`` calls for
``DatasetDict.push_to_hub`` of a new dataset repo, on 127.0.0.1, with the committed files kept in memory.

Endpoints: repo info (``GET /api/datasets/NS/NAME[/revision/REV]``), ``POST /api/repos/create``,
``POST /api/datasets/NS/NAME/preupload/REV`` (parquet files go by LFS, the rest inline),
``POST /datasets/NS/NAME.git/info/lfs/objects/batch`` and the ``PUT`` it points to (basic LFS transfer; the
client is run with ``HF_HUB_DISABLE_XET=1``), ``POST /api/validate-yaml``, the file tree
(``GET /api/datasets/NS/NAME/tree/REV[/PATH]``, ``POST .../paths-info/REV``), file downloads
(``GET|HEAD /datasets/NS/NAME/resolve/REV/PATH``) and ``POST /api/datasets/NS/NAME/commit/REV`` (NDJSON:
inline base64 files, LFS files by oid, deletions). Anything else answers 404 and is kept in ``unknown``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+?)"


@dataclass
class Repo:
    private: bool
    sha: str = "0" * 40
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Hub:
    """The stand-in's state: repos, uploaded LFS objects, every create_repo payload, every request, the requests
    it did not know, and ``fail`` (path pattern -> HTTP status) to answer a request with an error."""

    repos: dict[str, Repo] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Authorization)
    unknown: list[str] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    url: str = ""


class Handler(BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path, self.headers.get("Authorization", "")))
        body = self._body() if self.command in ("POST", "PUT") else b""
        for pattern, status in self.hub.fail.items():
            if re.fullmatch(pattern, path):
                return self._send(status, {"error": f"stand-in refuses {path}"},
                                  {"X-Error-Message": f"stand-in refuses {path}"})
        for method, pattern, handle in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and self.command == method:
                args = match.groupdict()
                repo = self.hub.repos.get(args.pop("repo", ""), None)
                if "repo" in match.groupdict() and repo is None and method != "PUT":
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                return handle(self, repo, body, **args)
        self.hub.unknown.append(f"{self.command} {self.path}")
        self._send(404, {"error": "not in the stand-in"})

    do_GET = do_POST = do_PUT = do_HEAD = _route

    # -- handlers ---------------------------------------------------------------------------------------------
    def repo_info(self, repo: Repo, body: bytes, **_: str) -> None:
        name = re.match(r"/api/datasets/([^/]+/[^/]+)", unquote(self.path)).group(1)  # type: ignore[union-attr]
        self._send(200, {"id": name, "sha": repo.sha, "private": repo.private,
                         "siblings": [{"rfilename": f} for f in sorted(repo.files)]})

    def create_repo(self, repo: None, body: bytes) -> None:
        payload = json.loads(body)
        self.hub.created.append(payload)
        name = f"{payload['organization']}/{payload['name']}"
        if name in self.hub.repos:
            return self._send(409, {"error": "You already created this dataset repo"})
        self.hub.repos[name] = Repo(private=payload.get("visibility") == "private")
        self._send(200, {"url": f"{self.hub.url}/datasets/{name}"})

    def preupload(self, repo: Repo, body: bytes, rev: str) -> None:
        files = json.loads(body)["files"]
        self._send(200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                    "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular"}
                                   for f in files]})

    def lfs_batch(self, repo: Repo, body: bytes) -> None:
        objects = json.loads(body)["objects"]
        self._send(200, {"transfer": "basic", "objects": [
            {"oid": o["oid"], "size": o["size"],
             "actions": {"upload": {"href": f"{self.hub.url}/lfs-upload/{o['oid']}"}}} for o in objects]})

    def lfs_put(self, repo: None, body: bytes, oid: str) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            return self._send(400, {"error": "sha256 mismatch"})
        self.hub.objects[oid] = body
        self._send(200, {})

    def validate_yaml(self, repo: None, body: bytes) -> None:
        self._send(200, {"errors": [], "warnings": []})

    def _entries(self, repo: Repo, prefix: str) -> list[dict[str, Any]]:
        """The files and folders directly under ``prefix`` ("" for the root)."""
        out: dict[str, dict[str, Any]] = {}
        for name, data in repo.files.items():
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1 if prefix else 0:]
            head = rest.split("/", 1)[0]
            path = f"{prefix}/{head}" if prefix else head
            out[path] = ({"type": "directory", "path": path, "oid": "1" * 40} if "/" in rest else
                         {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()})
        return sorted(out.values(), key=lambda e: e["path"])

    def tree(self, repo: Repo, body: bytes, rev: str, path: str | None = None) -> None:
        path = (path or "").strip("/")
        if path and not any(f.startswith(path + "/") for f in repo.files):
            return self._send(404, {"error": "not found"}, {"X-Error-Code": "EntryNotFound"})
        self._send(200, self._entries(repo, path))

    def paths_info(self, repo: Repo, body: bytes, rev: str) -> None:
        paths = json.loads(body or b"{}").get("paths", [])
        found = []
        for p in paths:
            p = p.strip("/")
            if p in repo.files:
                found.append({"type": "file", "path": p, "size": len(repo.files[p]),
                              "oid": hashlib.sha1(repo.files[p]).hexdigest()})
            elif any(f.startswith(p + "/") for f in repo.files):
                found.append({"type": "directory", "path": p, "oid": "1" * 40})
        self._send(200, found)

    def resolve(self, repo: Repo, body: bytes, rev: str, path: str) -> None:
        if path not in repo.files:
            return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        data = repo.files[path]
        self._send(200, data, {"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'})

    def commit(self, repo: Repo, body: bytes, rev: str) -> None:
        for line in body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                repo.files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                repo.files[value["path"]] = self.hub.objects[value["oid"]]
            elif item["key"] in ("deletedFile", "deletedFolder"):
                repo.files = {f: d for f, d in repo.files.items()
                              if f != value["path"] and not f.startswith(value["path"].rstrip("/") + "/")}
        repo.sha = hashlib.sha1(repo.sha.encode() + body).hexdigest()
        name = re.match(r"/api/datasets/([^/]+/[^/]+)/", unquote(self.path)).group(1)  # type: ignore[union-attr]
        self._send(200, {"success": True, "commitOid": repo.sha,
                         "commitUrl": f"{self.hub.url}/datasets/{name}/commit/{repo.sha}"})


ROUTES = [
    ("GET", rf"/api/datasets/{REPO}(/revision/[^/]+)?", Handler.repo_info),
    ("POST", r"/api/repos/create", Handler.create_repo),
    ("POST", rf"/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)", Handler.preupload),
    ("POST", rf"/datasets/{REPO}\.git/info/lfs/objects/batch", Handler.lfs_batch),
    ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", Handler.lfs_put),
    ("POST", r"/api/validate-yaml", Handler.validate_yaml),
    ("GET", rf"/api/datasets/{REPO}/tree/(?P<rev>[^/]+)(/(?P<path>.*))?", Handler.tree),
    ("POST", rf"/api/datasets/{REPO}/paths-info/(?P<rev>[^/]+)", Handler.paths_info),
    ("GET", rf"/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", Handler.resolve),
    ("HEAD", rf"/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", Handler.resolve),
    ("POST", rf"/api/datasets/{REPO}/commit/(?P<rev>[^/]+)", Handler.commit),
]


class StandIn:
    """``with StandIn() as hub:`` serves a fresh :class:`Hub` on a free port of 127.0.0.1 (``hub.url``)."""

    def __enter__(self) -> Hub:
        self.hub = Hub()
        handler = type("BoundHandler", (Handler,), {"hub": self.hub})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
