"""A stand-in for the Hugging Face hub on loopback: repositories served from folders.

It answers the calls the real `datasets` and `huggingface_hub` make to load a dataset or
download a model repository (set HF_ENDPOINT to `url`): a repository's info, its file tree,
`paths-info`, and each file by `resolve/<revision>/<path>`; everything else is a 404 as the hub
gives it. `write_repo` lays a
repository out as the hub's Parquet export does: `<config>/<split>-00000-of-00001.parquet` and a
README whose `configs` block says where each config's splits are.
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


def _entry(folder: Path, path: Path) -> dict:
    relative = str(path.relative_to(folder))
    if path.is_dir():
        return {"type": "directory", "path": relative, "oid": REVISION}
    oid = hashlib.sha1(path.read_bytes()).hexdigest()
    return {"type": "file", "path": relative, "size": path.stat().st_size, "oid": oid}


class HubStandIn:
    """`datasets` maps dataset ids to folders, `models` model ids (e.g. adapters) to folders."""

    def __init__(self, datasets: dict[str, Path], models: dict[str, Path] | None = None):
        self.repos = {("datasets/", repo): f for repo, f in datasets.items()}
        self.repos |= {("", repo): f for repo, f in (models or {}).items()}
        self.requests: list[str] = []
        self.delay_s = 0.0  # how long each file download waits before answering
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict]:
        for (kind, repo), folder in self.repos.items():
            api = f"/api/{kind or 'models/'}{repo}"
            files = f"/{kind}{repo}/resolve/"
            if path.startswith(files):
                target = folder / path[len(files) :].partition("/")[2]
                if not target.is_file():
                    return 404, b'{"error": "Entry not found"}', {"x-error-code": "EntryNotFound"}
                if method == "GET":
                    time.sleep(self.delay_s)
                data = target.read_bytes()
                etag = f'"{hashlib.sha1(data).hexdigest()}"'
                return 200, data, {"x-repo-commit": REVISION, "etag": etag}
            if path in (api, f"{api}/revision/main", f"{api}/revision/{REVISION}"):
                files_in = [p for p in sorted(folder.rglob("*")) if p.is_file()]
                info = {
                    "id": repo,
                    "sha": REVISION,
                    "private": False,
                    "gated": False,
                    "siblings": [{"rfilename": str(p.relative_to(folder))} for p in files_in],
                }
                return 200, json.dumps(info).encode(), {}
            if path.startswith(f"{api}/tree/"):
                base = folder / path[len(f"{api}/tree/") :].partition("/")[2]
                listing = sorted(base.iterdir()) if base.is_dir() else []
                return 200, json.dumps([_entry(folder, p) for p in listing]).encode(), {}
            if path.startswith(f"{api}/paths-info/"):
                asked = json.loads(body or b"{}").get("paths", [])
                found = [_entry(folder, folder / p) for p in asked if (folder / p).exists()]
                return 200, json.dumps(found).encode(), {}
        return 404, b'{"error": "Repository not found"}', {"x-error-code": "RepoNotFound"}

    def _handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{self.command} {path}")
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
