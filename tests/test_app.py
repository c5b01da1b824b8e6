"""`llmbench app`: the LoRA Land page, in a real browser against the real server.

The fast tests check how adapters map to tasks, where scores come from and how tokens are
counted. The slow ones drive Debian's headless Chromium (Playwright, no downloaded browser)
against the app, which talks to the session's one `llmbench serve` (the tiny model; adapters
alpha and beta, and one more trained here to answer with an HTML snippet). The "server stopped
mid-run" test puts a loopback proxy in front of that server and stops the proxy mid-answer, so
the shared server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest

from llmbench.app.catalog import (
    adapters_from_dir,
    adapters_from_map,
    build_catalog,
    resolve_base,
    scores,
)
from llmbench.errors import LLMBenchError
from llmbench.tasks.cards import load_cards

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HTML_ANSWER = " <img src=x onerror=alert(1)>"
HTML_TASK = "reuters"  # its adapter, trained below, answers with HTML_ANSWER
ADAPTER_MAP = {"glue_sst2": "alpha", "conllpp": "beta", HTML_TASK: "app_html"}
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def cards():
    return load_cards()


# ---- adapters, scores, tokens (fast) -----------------------------------------------------------


def _adapter(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")


def test_an_adapters_folder_maps_task_named_folders_and_the_sweeps_model_task_layout(
    tmp_path, cards
):
    _adapter(tmp_path / "flat" / "gsm8k")
    (tmp_path / "flat" / "notes").mkdir()
    (tmp_path / "flat" / "glue_sst2").mkdir()  # no adapter in it: not offered
    _adapter(tmp_path / "train" / "tiny" / "conllpp" / "run_model" / "model" / "model_weights")
    _adapter(tmp_path / "train" / "phi-2" / "gsm8k")  # another base model's: not offered
    assert adapters_from_dir(tmp_path / "flat", cards, "tiny") == {"gsm8k": "gsm8k"}
    assert adapters_from_dir(tmp_path / "train", cards, "tiny") == {"conllpp": "tiny/conllpp"}


@pytest.fixture
def local_client(tmp_path):
    """The app on a catalog of one adapter folder and an endpoint nobody answers (the guards
    below answer before anything is sent), addressed as this machine."""
    from fastapi.testclient import TestClient

    from llmbench.app.catalog import build_catalog
    from llmbench.app.web import create_app

    _adapter(tmp_path / "adapters" / "glue_sst2")
    catalog = build_catalog("http://127.0.0.1:1", "tiny", adapters_dir=tmp_path / "adapters")
    app = create_app(catalog, allowed_hosts=("lora-land.example",))
    with TestClient(app, base_url="http://127.0.0.1:7860") as client:
        yield client


def test_the_app_answers_only_the_names_of_this_machine_and_the_allowed_ones(local_client):
    assert local_client.get("/api/catalog").status_code == 200
    for host in ("localhost:7860", "lora-land.example"):
        assert local_client.get("/api/catalog", headers={"host": host}).status_code == 200
    rebound = local_client.get("/api/catalog", headers={"host": "attacker.example"})
    assert rebound.status_code == 400 and "glue_sst2" not in rebound.text


def test_a_huge_field_is_refused_before_anything_is_sent(local_client):
    from llmbench.app.web import MAX_BODY_BYTES, MAX_FIELD_CHARS

    field = {"task": "glue_sst2", "fields": {"sentence": "x" * (MAX_FIELD_CHARS + 1)}}
    assert local_client.post("/api/prompt", json=field).status_code == 422
    ok = {"task": "glue_sst2", "fields": {"sentence": "a fine film"}}
    assert local_client.post("/api/prompt", json=ok).status_code == 200
    huge = '{"task": "glue_sst2", "fields": {"sentence": "' + "y" * 10_000_000 + '"}}'
    declared = local_client.post(
        "/api/run", content=huge, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and str(MAX_BODY_BYTES) in declared.json()["error"]

    def chunks():  # no length declared: counted as it arrives
        for _ in range(40):
            yield b"z" * 65_536

    streamed = local_client.post(
        "/api/run", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_an_adapters_folder_without_adapters_is_an_error(tmp_path, cards):
    with pytest.raises(LLMBenchError, match="no trained adapter found"):
        adapters_from_dir(tmp_path, cards, "tiny")


def test_an_adapter_map_reports_every_bad_entry_with_a_hint(tmp_path, cards):
    path = tmp_path / "map.yaml"
    path.write_text("glue_sst3: alpha\nconllpp: 7\ngsm8k: tiny/gsm8k\n", encoding="utf-8")
    with pytest.raises(LLMBenchError) as caught:
        adapters_from_map(path, cards)
    assert len(caught.value.problems) == 2
    assert "did you mean 'glue_sst2'" in caught.value.problems[0]
    path.write_text(json.dumps({"gsm8k": "tiny/gsm8k"}), encoding="utf-8")
    assert adapters_from_map(path, cards) == {"gsm8k": "tiny/gsm8k"}


def test_scores_come_from_your_results_and_else_from_the_study_labelled_as_such(tmp_path):
    run = tmp_path / "eval" / "mistral-7b" / "gsm8k" / "mistral-7b__gsm8k"
    run.mkdir(parents=True)
    record = {"task": "gsm8k", "model": "mistral-7b", "adapter": "mistral-7b/gsm8k"}
    record |= {"score": 0.5, "n": 10, "n_failed": 0}
    (run / "scores.json").write_text(json.dumps(record), encoding="utf-8")
    found = scores("gsm8k", "mistral-7b/gsm8k", "mistral-7b", tmp_path)
    assert found["adapter"]["score"] == 0.5 and found["adapter"]["source"].startswith("your")
    assert found["base"]["source"] == "the study's Table 12 (mistral-7b)"
    assert "the study has no tiny" in scores("gsm8k", "x", "tiny", None)["base"]["source"]


def _scored_run(results: Path, model: str, task: str, adapter, per_row: dict) -> None:
    """A scores.json of `llmbench eval` with its rows' scores (`per_row`: id -> score)."""
    run = results / "eval" / model / task / (adapter.replace("/", "__") if adapter else "base")
    run.mkdir(parents=True)
    record = {"task": task, "model": model, "adapter": adapter, "n": len(per_row)}
    record |= {"score": sum(per_row.values()) / len(per_row), "n_failed": 0}
    record |= {"ids": list(per_row), "example_scores": list(per_row.values())}
    (run / "scores.json").write_text(json.dumps(record), encoding="utf-8")


def test_your_scores_carry_the_reports_intervals_and_a_paired_lift(tmp_path):
    from llmbench.report.intervals import cell_intervals

    _scored_run(tmp_path, "tiny", "gsm8k", None, {i: float(i % 5 < 2) for i in range(50)})
    _scored_run(tmp_path, "tiny", "gsm8k", "tiny/gsm8k", {i: float(i % 5 < 3) for i in range(50)})
    found = scores("gsm8k", "tiny/gsm8k", "tiny", tmp_path)
    assert found["adapter"]["score"] == pytest.approx(0.6) and found["lift"]["score"] == (
        pytest.approx(0.2)
    )
    from llmbench.report.table12 import read_run

    runs = [read_run(p) for p in sorted(tmp_path.glob("eval/tiny/gsm8k/*/scores.json"))]
    base, adapter = (r for r in sorted(runs, key=lambda r: r.adapter is not None))
    cell = cell_intervals(adapter, base, ("gsm8k", "tiny"))
    assert found["adapter"]["interval"] == [cell.ft.low, cell.ft.high]
    assert found["lift"]["interval"] == [cell.lift.low, cell.lift.high]
    assert "1000 resamples" in found["method"]
    assert scores("gsm8k", "x", "tiny", None)["lift"] is None  # the study's: no interval


@pytest.mark.slow
def test_the_page_shows_your_scores_with_their_intervals_and_the_lift(tmp_path, browser):
    """A real browser on an app whose results hold paired runs for glue_sst2 (no model server is
    needed to show scores)."""
    from playwright.sync_api import expect

    from llmbench.app.web import create_app

    _adapter(tmp_path / "adapters" / "glue_sst2")
    _scored_run(tmp_path / "runs", "tiny", "glue_sst2", None, {i: 0.5 for i in range(40)})
    _scored_run(tmp_path / "runs", "tiny", "glue_sst2", "glue_sst2", {i: 0.75 for i in range(40)})
    catalog = build_catalog(
        "http://127.0.0.1:1", "tiny", adapters_dir=tmp_path / "adapters", results=tmp_path / "runs"
    )
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        with BackgroundServer(create_app(catalog)) as url:
            page.goto(url)
            page.select_option("#category", "Reasoning")
            page.select_option("#adapter", "glue_sst2")
            expect(page.locator("#score-adapter")).to_have_text("0.750 [0.750, 0.750]")
            expect(page.locator("#score-base")).to_have_text("0.500 [0.500, 0.500]")
            expect(page.locator("#score-lift")).to_have_text("+0.250 [+0.250, +0.250]")
            expect(page.locator("#source-lift")).to_contain_text("paired on the same 40")
            expect(page.locator("#scores-note")).to_contain_text("1000 resamples, seed 0")
    finally:
        context.close()


def test_a_base_model_without_a_local_tokenizer_counts_with_cl100k(tmp_path):
    from llmbench.app.catalog import TokenCounter
    from llmbench.tasks.tokens import count_tokens

    base = resolve_base("mistral-7b", tmp_path)
    assert base.name == "mistral-7b" and base.tokenizer_dir is None
    counter = TokenCounter(base.tokenizer_dir)
    assert counter.name.startswith("cl100k_base")
    assert counter.count("Hello there, LoRA Land") == count_tokens(["Hello there, LoRA Land"])[0]
    with pytest.raises(LLMBenchError, match="did you mean 'mistral-7b'"):
        resolve_base("mistral-7c", tmp_path)


# ---- the page in a real browser (slow) ---------------------------------------------------------


class BackgroundServer:
    """Run an ASGI app (uvicorn) on a free loopback port in a thread."""

    def __init__(self, app):
        import uvicorn

        from llmbench.serving.launch import free_port

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the app server did not start")
            threading.Event().wait(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class StoppingProxy:
    """A loopback HTTP proxy to the real server that, once armed, passes one streamed event of
    an answer on, then drops every connection and stops listening: the server gone mid-run."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.armed = False
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self.site = None
        self.stopped = False

    async def _handle(self, request):
        from aiohttp import ClientSession, web

        if self.stopped:
            request.transport.close()
            return web.Response(status=503)
        body = await request.read()
        async with (
            ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers={"Content-Type": "application/json"},
            ) as upstream,
        ):
            response = web.StreamResponse(
                status=upstream.status,
                headers={"Content-Type": upstream.headers.get("Content-Type", "text/plain")},
            )
            await response.prepare(request)
            async for line in upstream.content:
                await response.write(line)
                if self.armed and line.startswith(b"data:"):
                    await self._stop(request)
                    return response
        return response

    async def _stop(self, request) -> None:
        self.stopped = True
        request.transport.close()
        await self.site.stop()

    async def _start(self) -> None:
        from aiohttp import web

        from llmbench.serving.launch import free_port

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        self.site = web.TCPSite(self.runner, "127.0.0.1", port)
        await self.site.start()
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> StoppingProxy:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def app_setup(served, tmp_path_factory):
    """The adapter map, with the HTML-answering adapter trained on the realized prompt of the
    first example chip of HTML_TASK (the tiny adapters answer decisively only on what they saw)."""
    import serving_fixtures  # noqa: I001 - tests/ is on sys.path (rootdir conftest)

    work = tmp_path_factory.mktemp("app")
    adapter_map = work / "adapters.yaml"
    adapter_map.write_text(json.dumps(ADAPTER_MAP), encoding="utf-8")
    catalog = build_catalog(served["url"], str(served["base"]), adapter_map=adapter_map)
    first = catalog.details(HTML_TASK)["examples"]["rows"][0]["fields"]
    prompt = catalog.realized_prompt(HTML_TASK, first)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serving_fixtures, "TRAIN_PROMPTS", [prompt])
        serving_fixtures.train_adapter(served["base"], HTML_ANSWER, served["root"] / "app_html")
    return {"catalog": catalog, "map": adapter_map, "work": work}


@pytest.fixture(scope="module")
def app_url(app_setup):
    from llmbench.app.web import create_app

    with BackgroundServer(create_app(app_setup["catalog"])) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: the set-up installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that records dialogs (an executed alert) and every address it requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs, page.requested = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: page.requested.append(request.url))
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def _pick(page, category: str, task: str) -> None:
    from playwright.sync_api import expect

    page.select_option("#category", category)
    page.select_option("#adapter", task)
    expect(page.locator("#task-name")).to_have_text(task)
    expect(page.locator(".chip").first).to_be_visible()


def _run_and_wait(page) -> None:
    from playwright.sync_api import expect

    page.click("#run")
    for side in ("adapter", "base"):
        expect(page.locator(f"#status-{side}")).to_contain_text("done in", timeout=WAIT_MS)


@pytest.mark.slow
def test_pick_an_adapter_use_an_example_and_run_streams_both_answers(page, app_url, app_setup):
    from playwright.sync_api import expect

    catalog = app_setup["catalog"]
    page.goto(app_url)
    page.select_option("#category", "Classic NLP")
    assert page.locator("#adapter option").all_inner_texts()[0].startswith("conllpp")
    assert page.locator("#adapter option").count() == 1
    _pick(page, "Reasoning", "glue_sst2")
    expect(page.locator("#score-adapter")).to_have_text("0.959")  # the study's, for mistral-7b
    expect(page.locator("#source-base")).to_contain_text("the study's Table 12")
    example = catalog.details("glue_sst2")["examples"]["rows"][0]["fields"]
    page.locator(".chip").first.click()
    box = page.locator('#fields textarea[data-column="sentence"]')
    expect(box).to_have_value(example["sentence"])
    tokens = catalog.counter.count(catalog.realized_prompt("glue_sst2", example))
    expect(page.locator("#token-count")).to_have_text(str(tokens))
    box.fill("short")  # the count follows typing
    short = catalog.counter.count(catalog.realized_prompt("glue_sst2", {"sentence": "short"}))
    expect(page.locator("#token-count")).to_have_text(str(short))
    page.locator(".chip").first.click()
    _run_and_wait(page)
    adapter_text = page.locator("#out-adapter").inner_text()
    assert "alpha" in adapter_text
    assert page.locator("#out-base").inner_text().strip() != ""
    expect(page.locator("#status-adapter")).to_contain_text("first token")
    assert page.screenshot(full_page=True).startswith(b"\x89PNG")
    assert all(url.startswith(app_url) for url in page.requested), page.requested


@pytest.mark.slow
def test_switching_adapters_updates_the_template_and_the_fields(page, app_url, app_setup):
    from playwright.sync_api import expect

    catalog = app_setup["catalog"]
    page.goto(app_url)
    _pick(page, "Reasoning", "glue_sst2")
    page.locator(".chip").first.click()
    _pick(page, "Classic NLP", "conllpp")
    conllpp = catalog.details("conllpp")
    expect(page.locator("#template")).to_have_text(conllpp["prompt_template"])
    columns = page.locator("#fields textarea").evaluate_all("els => els.map(e => e.dataset.column)")
    assert columns == conllpp["input_columns"]
    assert all(value == "" for value in page.locator("#fields textarea").evaluate_all(
        "els => els.map(e => e.value)"))  # fmt: skip


@pytest.mark.slow
def test_an_answer_that_is_html_shows_as_literal_text_and_runs_nothing(page, app_url):
    from playwright.sync_api import expect

    page.goto(app_url)
    _pick(page, "Knowledge", HTML_TASK)
    page.locator(".chip").first.click()
    _run_and_wait(page)
    expect(page.locator("#out-adapter")).to_have_text(HTML_ANSWER)
    assert page.locator("#out-adapter img").count() == 0
    assert page.locator("img").count() == 0
    assert page.dialogs == []


@pytest.mark.slow
def test_the_server_stopped_mid_run_or_an_adapter_refused_shows_an_inline_error(
    page, served, app_setup
):
    from playwright.sync_api import expect

    from llmbench.app.web import create_app

    adapter_map = app_setup["work"] / "refused.yaml"
    adapter_map.write_text(json.dumps({"glue_sst2": "alpha", "glue_mrpc": "nobody"}))
    with StoppingProxy(served["url"]) as proxy:
        catalog = build_catalog(proxy.url, str(served["base"]), adapter_map=adapter_map)
        with BackgroundServer(create_app(catalog)) as url:
            page.goto(url)
            _pick(page, "Reasoning", "glue_mrpc")
            page.locator(".chip").first.click()
            page.click("#run")
            expect(page.locator("#status-adapter")).to_contain_text("Error: the server refused")
            expect(page.locator("#status-adapter")).to_contain_text("nobody")
            expect(page.locator("#status-base")).to_contain_text("done in")

            _pick(page, "Reasoning", "glue_sst2")
            page.locator(".chip").first.click()
            proxy.armed = True
            page.click("#run")
            for side in ("adapter", "base"):
                expect(page.locator(f"#status-{side}")).to_contain_text("Error:")
            assert proxy.stopped
            expect(page.locator("#task-name")).to_have_text("glue_sst2")  # the page lives on

            page.click("#run")
            expect(page.locator("#status-adapter")).to_contain_text("cannot reach the endpoint")


@pytest.mark.slow
def test_run_streams_each_token_as_its_own_event_for_both_panels(app_setup):
    from fastapi.testclient import TestClient

    from llmbench.app.web import create_app

    catalog = app_setup["catalog"]
    fields = catalog.details("glue_sst2")["examples"]["rows"][0]["fields"]
    with TestClient(create_app(catalog), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/run", json={"task": "glue_sst2", "fields": fields})
    events = [json.loads(line[len("data: ") :]) for line in answer.text.split("\n") if line.strip()]
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == {"type": "end"}
    for panel in ("adapter", "base"):
        mine = [e for e in events if e.get("panel") == panel]
        assert mine[-1]["type"] == "done", mine
        assert len([e for e in mine if e["type"] == "token"]) >= 2
        assert mine[-1]["total_s"] >= mine[-1]["first_token_s"] >= 0
    assert "alpha" in "".join(e["text"] for e in events if e.get("type") == "token")


def test_the_app_command_needs_an_adapters_folder_or_a_map_and_checks_the_base_model(tmp_path):
    from llmbench.cli import build_parser

    parser = build_parser("app")
    common = ["app", "--endpoint", "http://127.0.0.1:1", "--base-model", "mistral-7c"]
    with pytest.raises(SystemExit):
        parser.parse_args(common)
    with pytest.raises(SystemExit):
        parser.parse_args([*common, "--adapters", "a", "--adapter-map", "m.yaml"])
    args = parser.parse_args([*common, "--adapters", str(tmp_path)])
    assert args.port == 7860 and args.host == "127.0.0.1"
    with pytest.raises(LLMBenchError, match="--base-model mistral-7c: not a registry model"):
        args.handler(args)


def test_no_page_asset_loads_from_elsewhere():
    static = Path(__file__).resolve().parents[1] / "llmbench" / "app" / "static"
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(static.iterdir()))
    assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert "innerHTML" not in text and "insertAdjacentHTML" not in text
