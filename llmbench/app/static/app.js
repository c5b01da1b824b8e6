// LoRA Land page. Every text from the server (model output, examples, cards) is set with
// textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { catalog: null, task: null, details: null, countTimer: null, running: false };

async function getJSON(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(`the app server did not answer (${error.message})`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || body.detail || `HTTP ${response.status}`);
  return body;
}

function showPageError(message) {
  const box = $("page-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

async function start() {
  try {
    state.catalog = await getJSON("/api/catalog");
  } catch (error) {
    showPageError(`Cannot load the adapters: ${error.message}`);
    return;
  }
  const { catalog } = state;
  $("base-model").textContent = catalog.base_model;
  $("endpoint").textContent = catalog.endpoint;
  $("tokenizer").textContent = catalog.tokenizer;
  $("panel-base-name").textContent = catalog.base_model;
  for (const category of catalog.categories) {
    const count = catalog.adapters.filter((a) => a.category === category).length;
    const element = option(category, `${category} (${count})`);
    element.disabled = count === 0;
    $("category").append(element);
  }
  $("category").addEventListener("change", fillAdapters);
  $("adapter").addEventListener("change", () => pickTask($("adapter").value));
  $("run").addEventListener("click", run);
  fillAdapters();
}

function fillAdapters() {
  const category = $("category").value;
  const shown = state.catalog.adapters.filter((a) => !category || a.category === category);
  $("adapter").replaceChildren(
    ...shown.map((a) => option(a.task, `${a.task} — ${a.description}`)),
  );
  if (shown.length) pickTask(shown[0].task);
}

async function pickTask(task) {
  state.task = task;
  $("adapter").value = task;
  let details;
  try {
    details = await getJSON(`/api/tasks/${encodeURIComponent(task)}`);
  } catch (error) {
    showPageError(`Cannot load ${task}: ${error.message}`);
    return;
  }
  if (state.task !== task) return; // another pick came first
  showPageError("");
  state.details = details;
  showDetails(details);
  showFields(details);
  showExamples(details);
  clearPanels();
  countTokens();
}

function formatScore(entry, signed = false) {
  if (!entry) return "–";
  const number = (x) => (signed && x >= 0 ? "+" : "") + x.toFixed(3);
  const interval = entry.interval
    ? ` [${number(entry.interval[0])}, ${number(entry.interval[1])}]`
    : "";
  return number(entry.score) + interval;
}

function showDetails(d) {
  $("task-name").textContent = d.task;
  $("task-description").textContent = d.description;
  $("adapter-id").textContent = d.adapter_id;
  $("panel-adapter-name").textContent = d.adapter_id;
  $("task-category").textContent = d.category;
  $("metric").textContent = d.metric;
  const dataset = $("dataset");
  dataset.replaceChildren();
  if (d.dataset_url) {
    const link = document.createElement("a");
    link.href = d.dataset_url;
    link.rel = "noreferrer noopener";
    link.target = "_blank";
    link.textContent = d.dataset_link;
    dataset.append(link);
  } else {
    dataset.textContent = d.dataset_link;
  }
  for (const side of ["adapter", "base", "lift"]) {
    const entry = d.scores[side];
    $(`score-${side}`).textContent = formatScore(entry, side === "lift");
    $(`source-${side}`).textContent = entry ? entry.source : "no score";
  }
  $("row-lift").hidden = !d.scores.lift;
  $("scores-note").textContent = d.scores.method ? `Brackets: ${d.scores.method}.` : "";
  $("scores-note").hidden = !d.scores.method;
  $("template").textContent = d.prompt_template;
}

function showFields(d) {
  const inputs = d.input_columns.map((column) => {
    const label = document.createElement("label");
    label.textContent = column;
    const box = document.createElement("textarea");
    box.dataset.column = column;
    box.addEventListener("input", scheduleCount);
    label.append(box);
    return label;
  });
  $("fields").replaceChildren(...inputs);
  $("target").textContent = "–";
}

function showExamples(d) {
  $("examples-source").textContent = d.examples.rows.length ? `from ${d.examples.source}` : d.examples.source;
  const chips = d.examples.rows.map((row, index) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    const first = String(Object.values(row.fields)[0] || "");
    chip.textContent = first.length > 48 ? `${first.slice(0, 48)}…` : first || `example ${index + 1}`;
    chip.title = first;
    chip.addEventListener("click", () => useExample(row));
    return chip;
  });
  $("examples").replaceChildren(...chips);
}

function useExample(row) {
  for (const box of $("fields").querySelectorAll("textarea")) {
    box.value = row.fields[box.dataset.column] ?? "";
  }
  $("target").textContent = row.target;
  countTokens();
}

function fieldValues() {
  const fields = {};
  for (const box of $("fields").querySelectorAll("textarea")) fields[box.dataset.column] = box.value;
  return fields;
}

function scheduleCount() {
  clearTimeout(state.countTimer);
  state.countTimer = setTimeout(countTokens, 150);
}

async function countTokens() {
  const task = state.task;
  try {
    const answer = await getJSON("/api/prompt", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ task, fields: fieldValues() }),
    });
    if (task !== state.task) return;
    $("token-count").textContent = String(answer.tokens);
    $("realized").textContent = answer.realized_prompt;
  } catch (error) {
    $("token-count").textContent = "?";
    $("realized").textContent = `(${error.message})`;
  }
}

function clearPanels() {
  for (const side of ["adapter", "base"]) {
    $(`out-${side}`).textContent = "";
    setStatus(side, "", false);
  }
}

function setStatus(side, text, isError) {
  const status = $(`status-${side}`);
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function onEvent(event, pending) {
  if (event.type === "end") return;
  const side = event.panel;
  if (event.type === "token") {
    $(`out-${side}`).append(document.createTextNode(event.text));
    setStatus(side, "streaming…", false);
  } else if (event.type === "done") {
    pending.delete(side);
    setStatus(
      side,
      `done in ${event.total_s.toFixed(2)} s · first token ${event.first_token_s.toFixed(2)} s · ` +
        `${event.tokens} tokens` + (event.finish_reason ? ` · ${event.finish_reason}` : ""),
      false,
    );
  } else if (event.type === "error") {
    pending.delete(side);
    setStatus(side, `Error: ${event.message}`, true);
  }
}

async function run() {
  if (state.running || !state.task) return;
  state.running = true;
  $("run").disabled = true;
  clearPanels();
  const pending = new Set(["adapter", "base"]);
  for (const side of pending) setStatus(side, "waiting…", false);
  try {
    await streamRun({ task: state.task, fields: fieldValues() }, pending);
    for (const side of pending) setStatus(side, "Error: the answer stream ended early", true);
  } catch (error) {
    for (const side of pending) setStatus(side, `Error: ${error.message}`, true);
  } finally {
    state.running = false;
    $("run").disabled = false;
  }
}

async function streamRun(body, pending) {
  let response;
  try {
    response = await fetch("/api/run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`the app server did not answer (${error.message})`);
  }
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new Error(answer.error || `HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const message = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of message.split("\n")) {
        if (line.startsWith("data: ")) onEvent(JSON.parse(line.slice(6)), pending);
      }
    }
  }
}

start();
