// The ldm serve page: a generate view and a runs view (with studies), over the JSON API of docs/serve.md.
"use strict";
const $ = id => document.getElementById(id);
const state = { models: [], model: null, job: null, events: null, runTimer: null };

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) { $("error").textContent = message || ""; }

// ---------- views ----------
function route() {
  const view = location.hash.startsWith("#runs") || location.hash.startsWith("#study") ? "runs" : "generate";
  $("view-generate").hidden = view !== "generate";
  $("view-runs").hidden = view !== "runs";
  $("nav-generate").classList.toggle("active", view === "generate");
  $("nav-runs").classList.toggle("active", view === "runs");
  if (view === "runs") loadRuns(); else stopRunTimer();
}

// ---------- generate ----------
async function loadModels() {
  state.models = await api("/api/models");
  const select = $("model");
  select.innerHTML = "";
  for (const m of state.models) {
    const option = new Option(m.error ? `${m.id} (cannot be used)` : `${m.id} (${m.condition})`, m.id);
    option.disabled = !!m.error;
    select.appendChild(option);
  }
  const first = state.models.find(m => !m.error);
  if (first) { select.value = first.id; chooseModel(); }
  else showError(state.models.length ? "no model in the models folders can be used" : "the models folders hold no model");
}

function chooseModel() {
  const m = state.models.find(x => x.id === $("model").value);
  state.model = m;
  if (!m) return;
  const r = m.recommended;
  $("model-info").textContent = `${m.condition}-conditional, ${m.space} space` + (m.imageSize ? `, ${m.imageSize}×${m.imageSize}` : "")
    + (m.condition === "class" ? `, ${m.classNames.length} classes` : m.vocabulary ? `, ${m.vocabulary.length} words` : ", open vocabulary")
    + ` — recommended: ${r.sampler}, ${r.steps} steps, guidance ${r.guidance}`;
  $("guidance").value = r.guidance;
  $("steps").value = r.steps;
  $("sampler").value = r.sampler;
  $("classes-box").hidden = m.condition !== "class";
  $("prompt-box").hidden = m.condition !== "text";
  const classes = $("classes");
  classes.innerHTML = "";
  (m.classNames || []).forEach((name, id) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = id; box.checked = id < 4; box.dataset.name = name;
    label.append(box, " " + name);
    classes.appendChild(label);
  });
  if (m.condition === "text" && !$("prompts").value && m.vocabulary) $("prompts").value = "a large red circle at the top left";
  checkPrompts();
}

// The words of a caption as the model's word vocabulary sees them (WordVocabulary.SplitWords).
const words = text => (text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu) || []).map(w => w.replace("’", "'"));

function checkPrompts() {
  const m = state.model, out = $("prompt-check");
  if (!m || m.condition !== "text") return;
  if (!m.vocabulary) { out.textContent = "open vocabulary: any words"; return; }
  const known = new Set(m.vocabulary);
  const unknown = [...new Set(words($("prompts").value).filter(w => !known.has(w)))];
  out.innerHTML = "";
  if (unknown.length === 0) { out.textContent = "every word is in the model's vocabulary"; return; }
  out.append("not in the model's vocabulary: ");
  unknown.forEach(w => { const s = document.createElement("span"); s.className = "unknown"; s.textContent = w; out.append(s, " "); });
}

function requestBody() {
  const m = state.model;
  const body = { model: m.id, sampler: $("sampler").value, steps: +$("steps").value, guidance: +$("guidance").value, seed: +$("seed").value, num: +$("num").value };
  if (m.condition === "class") body.classes = [...$("classes").querySelectorAll("input:checked")].map(b => +b.value);
  else body.prompts = $("prompts").value.split("\n").map(p => p.trim()).filter(p => p);
  return body;
}

async function generate(event) {
  event.preventDefault();
  showError("");
  $("result").hidden = true;
  let job;
  try {
    job = await api("/api/generate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(requestBody()) });
  } catch (e) { showError(e.message); return; }
  state.job = job.id;
  $("generate").disabled = true;
  $("cancel").disabled = false;
  $("progress-box").hidden = false;
  showProgress(job);
  const events = new EventSource(`/api/jobs/${job.id}/events`);
  state.events = events;
  events.onmessage = e => {
    const status = JSON.parse(e.data);
    showProgress(status);
    if (["done", "failed", "cancelled"].includes(status.state)) { events.close(); finish(status); }
  };
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) return; };
}

function showProgress(s) {
  $("progress").value = s.fraction;
  $("progress-text").textContent =
    s.state === "queued" ? (s.position ? `queued: ${s.position} ahead of you` : "starting")
    : s.state === "running" ? `step ${s.step} of ${s.stepsPerBatch}, images ${s.imagesDone + 1}–${Math.min(s.totalImages, s.imagesDone + s.batchImages)} of ${s.totalImages} (${Math.round(100 * s.fraction)}%)`
    : s.state === "done" ? `done in ${s.seconds} s` : s.state;
}

function finish(s) {
  $("generate").disabled = false;
  $("cancel").disabled = true;
  state.job = null;
  if (s.state === "failed") { showError(s.error); return; }
  if (s.state !== "done") return;
  // Small images are shown enlarged (pixelated), up to the page's width.
  $("grid").onload = () => { $("grid").style.width = Math.min(3 * $("grid").naturalWidth, 720) + "px"; };
  $("grid").src = s.grid;
  $("grid-link").href = s.grid;
  const singles = $("singles");
  singles.innerHTML = "";
  s.images.forEach((url, i) => {
    const a = document.createElement("a");
    a.href = url; a.download = `ldm-${i}.png`; a.title = s.captions[i];
    const img = document.createElement("img");
    img.src = url; img.alt = s.captions[i];
    a.appendChild(img);
    singles.appendChild(a);
  });
  $("command").textContent = s.command;
  $("result").hidden = false;
}

async function cancel() {
  if (!state.job) return;
  try { await api(`/api/jobs/${state.job}/cancel`, { method: "POST" }); } catch (e) { showError(e.message); }
}

// ---------- runs ----------
function stopRunTimer() { if (state.runTimer) clearInterval(state.runTimer); state.runTimer = null; }

const duration = s => s == null ? "" : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;

async function loadRuns() {
  let data;
  try { data = await api("/api/runs"); } catch (e) { showError(e.message); return; }
  const body = $("runs-table").querySelector("tbody");
  body.innerHTML = "";
  const selected = decodeURIComponent((location.hash.match(/^#runs\/(.+)$/) || [])[1] || "");
  for (const r of data.runs) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    if (r.id === selected) tr.className = "selected";
    const cells = [r.id, r.state, r.totalSteps ? `${r.step} / ${r.totalSteps}` : r.step, r.stepsPerSecond ?? "", duration(r.secondsLeft)];
    cells.forEach((c, k) => { const td = document.createElement("td"); td.textContent = c; if (k === 1) td.className = `state-${r.state}`; tr.appendChild(td); });
    tr.onclick = () => { location.hash = `#runs/${encodeURIComponent(r.id)}`; };
    body.appendChild(tr);
  }
  const list = $("studies");
  list.innerHTML = "";
  for (const s of data.studies) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `#study/${encodeURIComponent(s.id)}`; a.textContent = s.id + (s.hasReport ? "" : " (no report yet)");
    li.appendChild(a);
    list.appendChild(li);
  }
  const study = decodeURIComponent((location.hash.match(/^#study\/(.+)$/) || [])[1] || "");
  $("run-detail").hidden = !selected;
  $("study-detail").hidden = !study;
  stopRunTimer();
  if (selected) { await showRun(selected); state.runTimer = setInterval(() => showRun(selected), 5000); }
  if (study) await showStudy(study);
}

// Columns that are not curves of the training itself.
const NOT_CURVES = new Set(["lr", "steps_per_sec", "rss_mib"]);

async function showRun(id) {
  let run;
  try { run = await api(`/api/run?id=${encodeURIComponent(id)}`); } catch (e) { showError(e.message); return; }
  $("run-title").textContent = run.id;
  $("run-state").innerHTML = "";
  const st = document.createElement("span");
  st.className = `state-${run.state}`; st.textContent = run.state;
  $("run-state").append(st, ` — step ${run.step}${run.totalSteps ? " of " + run.totalSteps : ""}`
    + (run.stepsPerSecond ? `, ${run.stepsPerSecond} steps/s` : "") + (run.secondsLeft != null ? `, ${duration(run.secondsLeft)} left` : "")
    + (run.updated ? `, last logged ${new Date(run.updated).toLocaleString()}` : ""));
  if (run.error) { const why = document.createElement("div"); why.className = "run-error"; why.textContent = run.error; $("run-state").append(why); }
  const charts = $("run-charts");
  charts.innerHTML = "";
  const keys = Object.keys(run.metrics).filter(k => !NOT_CURVES.has(k));
  for (const k of keys) LineChart.draw(charts, [{ name: k, xs: run.steps, ys: run.metrics[k] }], { title: k, log: run.metrics[k].every(v => v === null || v > 0) });
  if (run.metrics.lr) LineChart.draw(charts, [{ name: "lr", xs: run.steps, ys: run.metrics.lr }], { title: "learning rate" });
  const grids = run.grids;
  $("run-grids").hidden = grids.length === 0;
  if (grids.length) {
    const slider = $("grid-slider");
    const atEnd = slider.max === "" || +slider.value >= +slider.max;
    slider.max = grids.length - 1;
    if (atEnd) slider.value = grids.length - 1;
    const show = () => {
      const g = grids[+slider.value];
      $("grid-step").textContent = g.step;
      $("run-grid").src = `/api/run/file?id=${encodeURIComponent(run.id)}&file=${encodeURIComponent(g.file)}`;
    };
    slider.oninput = show;
    show();
  }
  const settings = $("run-settings");
  settings.innerHTML = "";
  for (const [k, v] of Object.entries(run.settings)) {
    const tr = document.createElement("tr");
    for (const c of [k, v]) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    settings.appendChild(tr);
  }
}

async function showStudy(id) {
  let study;
  try { study = await api(`/api/study?id=${encodeURIComponent(id)}`); } catch (e) { showError(e.message); return; }
  const charts = $("study-charts");
  charts.innerHTML = "";
  // One curve per configuration and seed for each measure, drawn from results.jsonl.
  const measures = [...new Set(study.results.flatMap(r => Object.keys(r.metrics || {})))];
  for (const m of measures) {
    const series = {};
    for (const r of study.results) {
      if (!(m in (r.metrics || {}))) continue;
      const name = `${r.config} seed ${r.seed}`;
      (series[name] ||= { name, xs: [], ys: [] });
      series[name].xs.push(r.step); series[name].ys.push(r.metrics[m]);
    }
    LineChart.draw(charts, Object.values(series), { title: `${m} (study ${id})`, width: 520 });
  }
  $("study-report").innerHTML = study.report
    ? Markdown.render(study.report, src => `/api/study/file?id=${encodeURIComponent(id)}&path=${encodeURIComponent(src)}`)
    : "<p class=\"muted\">This study has no report yet (ldm study writes report.md when it has results).</p>";
}

// ---------- start ----------
$("model").onchange = chooseModel;
$("prompts").oninput = checkPrompts;
$("generate-form").onsubmit = generate;
$("cancel").onclick = cancel;
$("classes-all").onclick = () => $("classes").querySelectorAll("input").forEach(b => { b.checked = true; });
$("classes-none").onclick = () => $("classes").querySelectorAll("input").forEach(b => { b.checked = false; });
window.onhashchange = route;
loadModels().catch(e => showError(e.message));
route();
