"""A stand-in for the Hugging Face hub on loopback: repositories served from folders.

It answers the calls the real `datasets` and `huggingface_hub` make to load a dataset or
download a model repository (set HF_ENDPOINT to `url`): a repository's info, its file tree,
`paths-info`, and each file by `resolve/<revision>/<path>`; everything else is a 404 as the hub
gives it. A dataset may also have a Parquet export, served at the revision the hub gives it
(`refs/convert/parquet`, one URL-quoted path segment); every other revision is the main one.

`write_repo` lays a script-free repository out as the hub's converted datasets are:
`<config>/<split>-00000-of-00001.parquet` and a README whose `configs` block says where each
config's splits are. `write_export` lays out a Parquet export: `<config>/<split>/0000.parquet`.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

REVISION = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
EXPORT = "refs/convert/parquet"


def write_repo(folder: Path, configs: dict[str, dict[str, list[dict]]]) -> Path:
    """A dataset repository in `folder`: configs[name][split] is that split's rows."""
    import datasets

    readme = ["---", "configs:"]
    for name, splits in configs.items():
        readme += [f"- config_name: {name}", "  data_files:"]
        for split, rows in splits.items():
            shard = Path(name) / f"{split}-00000-of-00001.parquet"
            (folder / shard).parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows).to_parquet(str(folder / shard))
            readme += [f"  - split: {split}", f"    path: {name}/{split}-*"]
    (folder / "README.md").write_text("\n".join([*readme, "---", ""]), encoding="utf-8")
    return folder


def write_export(folder: Path, configs: dict[str, dict[str, list[dict]]]) -> Path:
    """A Parquet export in `folder`: configs[name][split] is that split's rows, in two shards
    when it has more than one row (the export splits big splits into numbered files)."""
    import datasets

    for name, splits in configs.items():
        for split, rows in splits.items():
            half = (len(rows) + 1) // 2
            for number, shard in enumerate(part for part in (rows[:half], rows[half:]) if part):
                path = folder / name / split / f"{number:04d}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                datasets.Dataset.from_list(shard).to_parquet(str(path))
    return folder


def _entry(folder: Path, path: Path) -> dict:
    relative = str(path.relative_to(folder))
    if path.is_dir():
        return {"type": "directory", "path": relative, "oid": REVISION}
    oid = hashlib.sha1(path.read_bytes()).hexdigest()
    return {"type": "file", "path": relative, "size": path.stat().st_size, "oid": oid}


class HubStandIn:
    """`datasets` maps dataset ids to folders, `models` model ids (e.g. adapters) to folders,
    `exports` dataset ids to the folder of their Parquet export (a dataset may have only that,
    as a loading-script dataset has). `requests` lists each request as 'METHOD /unquoted/path'."""

    def __init__(
        self,
        datasets: dict[str, Path],
        models: dict[str, Path] | None = None,
        exports: dict[str, Path] | None = None,
    ):
        # (kind, repo) -> {revision: folder}; "main" stands for every revision but the export.
        self.repos: dict[tuple[str, str], dict[str, Path]] = {}
        for kind, folders, revision in (
            ("datasets/", datasets, "main"),
            ("", models or {}, "main"),
            ("datasets/", exports or {}, EXPORT),
        ):
            for repo, folder in folders.items():
                self.repos.setdefault((kind, repo), {})[revision] = folder
        self.requests: list[str] = []
        self.delay_s = 0.0  # how long each file download waits before answering
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict]:
        """The hub's answer to `path` as sent (a revision is one URL-quoted segment)."""
        for (kind, repo), revisions in self.repos.items():
            api = f"/api/{kind or 'models/'}{repo}"
            files = f"/{kind}{repo}/resolve/"
            if path.startswith(files):
                revision, _, name = path[len(files) :].partition("/")
                folder = revisions.get(EXPORT if unquote(revision) == EXPORT else "main")
                target = folder / unquote(name) if folder else None
                if target is None or not target.is_file():
                    return 404, b'{"error": "Entry not found"}', {"x-error-code": "EntryNotFound"}
                if method == "GET":
                    time.sleep(self.delay_s)
                data = target.read_bytes()
                etag = f'"{hashlib.sha1(data).hexdigest()}"'
                return 200, data, {"x-repo-commit": REVISION, "etag": etag}
            for prefix in (f"{api}/revision/", f"{api}/tree/", f"{api}/paths-info/"):
                if path == api or path.startswith(prefix):
                    rest = path[len(prefix) :] if path != api else "main"
                    revision, _, inner = rest.partition("/")
                    folder = revisions.get(EXPORT if unquote(revision) == EXPORT else "main")
                    if folder is None:
                        break
                    return self._api(prefix, repo, folder, unquote(inner), body)
        return 404, b'{"error": "Repository not found"}', {"x-error-code": "RepoNotFound"}

    def _api(self, prefix: str, repo: str, folder: Path, inner: str, body: bytes):
        if prefix.endswith("/tree/"):
            base = folder / inner
            listing = sorted(base.iterdir()) if base.is_dir() else []
            return 200, json.dumps([_entry(folder, p) for p in listing]).encode(), {}
        if prefix.endswith("/paths-info/"):
            asked = json.loads(body or b"{}").get("paths", [])
            found = [_entry(folder, folder / p) for p in asked if (folder / p).exists()]
            return 200, json.dumps(found).encode(), {}
        files_in = [p for p in sorted(folder.rglob("*")) if p.is_file()]
        info = {
            "id": repo,
            "sha": REVISION,
            "private": False,
            "gated": False,
            "siblings": [{"rfilename": str(p.relative_to(folder))} for p in files_in],
        }
        return 200, json.dumps(info).encode(), {}

    def _handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                path = urlparse(self.path).path
                hub.requests.append(f"{self.command} {unquote(path)}")
                status, data, headers = hub.answer(self.command, path, body)
                self.send_response(status)
                self.send_header(
                    "content-type",
                    "application/json"
                    if status != 200 or path.startswith("/api/")
                    else "application/octet-stream",
                )
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = _any

            def log_message(self, *args):
                pass

        return Handler
