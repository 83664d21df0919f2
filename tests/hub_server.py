"""A Hugging Face Hub on 127.0.0.1 for tests: the write API that `huggingface_hub` 2.4's `HfApi.upload_folder`
uses, and the read API of `hf_hub_download`, over in-memory repositories. Every test that talks to a Hub uses it.

Emulated (model repositories; what the real client sends was read from huggingface_hub 2.4's source):

- ``POST /api/repos/create`` — ``{"name", "organization", "visibility"?}`` → ``{"url"}``; 409 (with the ``url``)
  if it exists, which ``create_repo(exist_ok=True)`` accepts. Namespaces in `forbidden` answer 403, as a Hub token
  without write access to them would.
- ``POST /api/validate-yaml`` — always valid (``create_commit`` checks a README's metadata first).
- ``POST /api/models/{repo}/preupload/{revision}`` — every file is to be sent inline (``"uploadMode": "regular"``),
  with the git blob oid of the current remote file so that the client skips unchanged files. The real Hub asks for
  binaries through LFS / Xet; those transfer protocols are NOT emulated.
- ``POST /api/models/{repo}/commit/{revision}`` — the NDJSON commit (header, ``file`` base64 entries,
  ``deletedFile``, ``deletedFolder``) → ``{"commitUrl", "commitOid"}``. The first `fail_commits` commits answer 503,
  to exercise the client's retries.
- ``GET /api/models/{repo}[/revision/{revision}]`` — repository info (``sha``, ``siblings``);
  ``GET /api/models/{repo}/tree/{revision}`` — its files, all on one page (``snapshot_download``).
- ``HEAD`` / ``GET /{repo}/resolve/{revision}/{path}`` — a file, with ``X-Repo-Commit`` and ``ETag`` as the Hub
  sends them; 404 with ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``.

Revisions are ``main`` or a commit oid. Repositories are made by the client (``create_repo``) or seeded with
`HubServer.add_repo` (a folder or ``{path: bytes}``, at a chosen commit oid). A `Failure` per repository answers its
read requests (the ``/api/models/{repo}...`` and ``/{repo}/resolve/...`` routes) instead of serving them: a status
without a body, after a delay if asked, every time or only the first `times` times. So a gated repository (403
``GatedRepo``), a missing or refused token (401, 403), a Hub that is down (503) or one that stalls.

Point the client at it with ``HF_ENDPOINT=server.endpoint`` (read when huggingface_hub is imported, so set it for a
subprocess, or patch ``huggingface_hub.constants`` in-process).
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as the oid / ETag of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repository:
    """A repository's history: commits oldest first, each `(oid, message, files)`."""

    private: bool = False
    commits: list[tuple[str, str, dict[str, bytes]]] = field(default_factory=list)

    def files(self, revision: str = "main") -> dict[str, bytes] | None:
        """The files at `revision` (``main`` or a commit oid), None if there is no such revision."""
        if revision == "main":
            return self.commits[-1][2] if self.commits else {}
        return next((files for oid, _, files in self.commits if oid == revision), None)

    def head(self) -> str:
        return self.commits[-1][0] if self.commits else "0" * 40


@dataclass
class Failure:
    """How the Hub answers a repository's read requests instead of serving them: `status` with no body, after
    `delay_s` of silence (a stall, for a client's timeout to cut short), for the first `times` requests (None: all)."""

    status: int
    code: str | None = None  # X-Error-Code, e.g. "GatedRepo"
    message: str | None = None  # X-Error-Message
    delay_s: float = 0.0
    times: int | None = None


def folder_files(folder: str | Path) -> dict[str, bytes]:
    """Every file under `folder` as ``{relative posix path: bytes}``: a repository's content."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


class HubServer:
    """The emulated Hub, served from a daemon thread; use as a context manager.

    Attributes: `endpoint` (``http://127.0.0.1:PORT``), `repos` ({repo_id: Repository}), `forbidden` (namespaces
    refused with 403), `fail_commits` (commits still to refuse with 503), `failures` ({repo_id: Failure}),
    `requests` (``(method, path)`` seen).
    """

    def __init__(self, forbidden: set[str] | None = None, fail_commits: int = 0,
                 failures: dict[str, Failure] | None = None) -> None:
        self.repos: dict[str, Repository] = {}
        self.forbidden = set(forbidden or ())
        self.fail_commits = fail_commits
        self.failures = {repo_id: replace(failure) for repo_id, failure in (failures or {}).items()}  # counted here
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_repo(self, repo_id: str, files: dict[str, bytes] | str | Path, oid: str | None = None,
                 private: bool = False) -> str:
        """Seed `repo_id` with one commit of `files` (a folder, or ``{path: bytes}``) at `oid` (default: derived from
        the files); returns the commit oid."""
        content = folder_files(files) if isinstance(files, (str, Path)) else dict(files)
        oid = oid or hashlib.sha1(json.dumps(sorted((path, git_blob_oid(data)) for path, data in
                                                    content.items())).encode()).hexdigest()
        with self.lock:
            self.repos[repo_id] = Repository(private=private, commits=[(oid, "initial commit", content)])
        return oid

    def take_failure(self, repo_id: str | None) -> Failure | None:
        """The failure that answers this read request of `repo_id`, counting it against its `times`; None to serve."""
        failure = self.failures.get(repo_id) if repo_id else None
        if failure is None or failure.times == 0:
            return None
        if failure.times is not None:
            failure.times -= 1
        return failure

    def commit(self, repo_id: str, message: str, operations: list[dict]) -> str:
        """Apply commit `operations` (the NDJSON entries after the header) to `repo_id`; returns the new oid."""
        repo = self.repos[repo_id]
        files = dict(repo.files())
        for operation in operations:
            key, value = operation["key"], operation["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(prefix)}
            else:
                raise ValueError(f"this emulator does not take {key!r} entries (it never asks for LFS uploads)")
        oid = hashlib.sha1(json.dumps([repo.head(), message, sorted((p, git_blob_oid(d)) for p, d in
                                                                    files.items())]).encode()).hexdigest()
        repo.commits.append((oid, message, files))
        return oid


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing --------------------------------------------------------------------------------------------------

    def _path(self) -> list[str]:
        return [unquote(part) for part in urlparse(self.path).path.strip("/").split("/")]

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        body = b"" if head else json.dumps({"error": message}).encode()
        self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message,
                                  "Content-Type": "application/json"}, head=head)

    # -- routes ----------------------------------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 — http.server's naming
        parts, body = self._path(), self._body()
        with self.hub.lock:
            self.hub.requests.append(("POST", self.path))
            if parts == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body))
            if parts == ["api", "validate-yaml"]:
                return self._json(200, {"errors": [], "warnings": []})
            if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] in ("preupload", "commit"):
                repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], parts[5]
                if repo_id not in self.hub.repos:
                    return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                if parts[2] in self.hub.forbidden:
                    return self._error(403, "Forbidden", f"You don't have write access to {repo_id}")
                if revision != "main":
                    return self._error(404, "RevisionNotFound", f"Revision {revision} not found")
                if action == "preupload":
                    return self._preupload(repo_id, json.loads(body))
                return self._commit(repo_id, body)
        self._error(404, "NotFound", f"no route for POST {self.path}")

    def do_GET(self) -> None:  # noqa: N802
        self._get(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._get(head=True)

    def _get(self, head: bool) -> None:
        parts = self._path()
        with self.hub.lock:
            self.hub.requests.append(("HEAD" if head else "GET", self.path))
            failure = self.hub.take_failure(_read_repo_id(parts))
        if failure is not None:
            time.sleep(failure.delay_s)  # outside the lock: a stalled request holds up no other
            headers = {"X-Error-Code": failure.code, "X-Error-Message": failure.message}
            return self._send(failure.status, headers={key: value for key, value in headers.items() if value})
        with self.hub.lock:
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "tree":
                return self._tree(f"{parts[2]}/{parts[3]}", parts[5])
            if parts[:2] == ["api", "models"] and len(parts) in (4, 6):
                return self._repo_info(f"{parts[2]}/{parts[3]}", parts[5] if len(parts) == 6 else "main")
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
        self._error(404, "NotFound", f"no route for GET {self.path}", head=head)

    def _create_repo(self, payload: dict) -> None:
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        if payload.get("organization") in self.hub.forbidden:
            return self._error(403, "Forbidden", f"You don't have the rights to create a model under "
                                                 f"{payload['organization']}")
        if repo_id in self.hub.repos:  # the Hub's 409 names the repository too; create_repo(exist_ok=True) reads it
            return self._json(409, {"error": "You already created this model repo",
                                    "url": f"{self.hub.endpoint}/{repo_id}"}, {"X-Error-Code": "RepoExists"})
        self.hub.repos[repo_id] = Repository(private=payload.get("visibility") == "private")
        self._json(200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id, "id": repo_id})

    def _preupload(self, repo_id: str, payload: dict) -> None:
        current = self.hub.repos[repo_id].files()
        files = [{"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_blob_oid(current[item["path"]]) if item["path"] in current else None}
                 for item in payload["files"]]
        self._json(200, {"files": files, "commitOid": self.hub.repos[repo_id].head()})

    def _commit(self, repo_id: str, body: bytes) -> None:
        if self.hub.fail_commits > 0:
            self.hub.fail_commits -= 1
            return self._error(503, "ServiceUnavailable", "the emulated Hub refuses this commit (fail_commits)")
        entries = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not entries or entries[0]["key"] != "header":
            return self._error(400, "BadRequest", "a commit starts with a header entry")
        try:
            oid = self.hub.commit(repo_id, entries[0]["value"]["summary"], entries[1:])
        except ValueError as error:
            return self._error(400, "BadRequest", str(error))
        self._json(200, {"commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid,
                         "success": True})

    def _repo_info(self, repo_id: str, revision: str) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        files = repo.files(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Revision {revision} not found")
        sha = repo.head() if revision == "main" else revision
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                         "siblings": [{"rfilename": path} for path in sorted(files)]})

    def _tree(self, repo_id: str, revision: str) -> None:
        repo = self.hub.repos.get(repo_id)
        files = repo.files(revision) if repo is not None else None
        if files is None:
            return self._error(404, "RevisionNotFound" if repo else "RepoNotFound", f"{repo_id}@{revision} not found")
        entries = [{"type": "file", "path": path, "size": len(data), "oid": git_blob_oid(data)}
                   for path, data in sorted(files.items())]
        self._send(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})

    def _resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head=head)
        files = repo.files(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", f"Revision {revision} not found", head=head)
        sha = repo.head() if revision == "main" else revision
        if path not in files:
            self.send_response(404)
            for key, value in {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha, "Content-Length": "0"}.items():
                self.send_header(key, value)
            self.end_headers()
            return
        data = files[path]
        self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{git_blob_oid(data)}"',
                               "Content-Type": "application/octet-stream"}, head=head)


def _read_repo_id(parts: list[str]) -> str | None:
    """The repository a read request names (``api/models/{repo}...`` or ``{repo}/resolve/...``), or None."""
    if parts[:2] == ["api", "models"] and len(parts) >= 4:
        return f"{parts[2]}/{parts[3]}"
    if len(parts) >= 5 and parts[2] == "resolve":
        return f"{parts[0]}/{parts[1]}"
    return None
