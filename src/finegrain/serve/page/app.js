// The finegrain page: identify faces in a photo against a collection, score it, explain a match, and manage
// collections. Plain browser JavaScript over the service's JSON API; no build step, nothing fetched from elsewhere.
"use strict";

const MATCHES_SHOWN = 3;
const ITEMS_SHOWN = 300; // a page of items; the total is shown
const THUMBNAIL_PX = 128; // thumbnails are asked for at this size (…/image?size=), not as the stored photo
const FACE_MARGIN = 0.2; // as the service crops faces (engine.FACE_MARGIN), so an explained crop is what was matched
// Adding many photos goes in several requests, each below the service's body limit (/health max_upload_mb).
const ADD_BATCH_FILES = 16;
const addBatchBytes = () => 0.8 * (state.health?.max_upload_mb ?? 10) * 1024 * 1024;

const $ = (selector) => document.querySelector(selector);
const state = {
  health: null,
  collections: [],
  current: null, // selected collection name
  file: null, // the photo being analysed (a File or Blob)
  photoUrl: null,
  faces: [], // [{box|null, score?, label, confidence, unknown, nearest, matches, ...}]
  selected: 0,
  run: 0, // bumped per analysis, so a slow answer for an older photo is dropped
  heatUrl: null,
  explaining: 0,
};

// -- talking to the service ------------------------------------------------------------------------------
function apiKey() {
  return $("#api-key").value.trim();
}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, { body, json, write = false } = {}) {
  const headers = {};
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (write && apiKey()) headers["X-API-Key"] = apiKey();
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new ApiError(`cannot reach the service (${error.message})`, 0);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`.trim();
    try {
      const data = await response.json();
      if (data && data.error) message = data.error;
    } catch {
      // not JSON (a proxy's page, say): the status line says enough
    }
    throw new ApiError(message, response.status);
  }
  return response;
}

const getJSON = async (path) => (await api("GET", path)).json();
const collectionPath = (name) => `/collections/${encodeURIComponent(name)}`;

// -- messages --------------------------------------------------------------------------------------------
function showError(error) {
  const message = error instanceof Error ? error.message : String(error);
  $("#error-text").textContent = message;
  $("#error").hidden = false;
}

function clearError() {
  $("#error").hidden = true;
  $("#error-text").textContent = "";
}

function progress(text) {
  $("#progress").textContent = text;
}

function fixed(value, digits = 2) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function fileName(path) {
  return path ? String(path).split(/[\\/]/).pop() : "";
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// -- service state -----------------------------------------------------------------------------------------
async function loadHealth() {
  const health = await getJSON("/health");
  state.health = health;
  const parts = [];
  parts.push(health.model
    ? `embedding model ${fileName(health.model.model)} (${health.model.output_size}-d, ${health.model.image_size} px)`
    : "no embedding model");
  parts.push(health.scorer ? `scorer ${fileName(health.scorer.model)}` : "no scorer");
  if (typeof health.threshold === "number") {
    parts.push(`same-person threshold ${fixed(health.threshold)} (${health.threshold_source})`);
    $("#threshold").placeholder = `default ${fixed(health.threshold)}`;
  }
  if (health.api_key_required_for_writes) parts.push("changes need an API key");
  $("#status").textContent = `Service ready: ${parts.join(" · ")}`;
  $("#collections-section").hidden = !health.model;
  $("#threshold-option").hidden = !health.model;
  $("#key-section").hidden = !health.model;
  if (health.model) await loadCollections();
}

async function loadCollections(select) {
  const { collections } = await getJSON("/collections");
  state.collections = collections;
  const menu = $("#collection-select");
  menu.replaceChildren();
  if (!collections.length) menu.append(new Option("no collections yet", ""));
  for (const c of collections) menu.append(new Option(`${c.name} (${plural(c.items, "item")})`, c.name));
  const wanted = select ?? state.current ?? sessionStorage.getItem("finegrain.collection");
  state.current = collections.some((c) => c.name === wanted) ? wanted : (collections[0]?.name ?? null);
  menu.value = state.current ?? "";
  menu.disabled = !collections.length;
  if (state.current) sessionStorage.setItem("finegrain.collection", state.current);
  $("#delete-collection").disabled = !state.current;
  $("#add-items-fields").disabled = !state.current;
  await loadItems();
}

function currentCollection() {
  return state.collections.find((c) => c.name === state.current) ?? null;
}

async function loadItems() {
  const list = $("#items");
  list.replaceChildren();
  if (!state.current) {
    $("#items-note").textContent = "Create a collection, then add labelled photos to it.";
    return;
  }
  const answer = await getJSON(`${collectionPath(state.current)}/items?limit=${ITEMS_SHOWN}`);
  const items = answer.items;
  const total = answer.total ?? items.length;
  let note = plural(total, "item");
  if (items.length < total) {
    note += ` (the first ${items.length} added are shown)`;
  } else {
    note += `, ${plural(new Set(items.filter((i) => i.label !== null).map((i) => i.label)).size, "label")}`;
  }
  $("#items-note").textContent = total ? note : "No photos yet: add some with a label.";
  const sorted = [...items].sort((a, b) => (a.label ?? "\uffff").localeCompare(b.label ?? "\uffff"));
  sorted.forEach((item) => list.append(itemRow(item)));
}

function itemRow(item) {
  const row = document.createElement("li");
  row.className = "item";
  row.dataset.id = item.id;
  const name = item.label ?? "unlabelled";
  const thumb = thumbnail(item.image, `Photo of ${name}`);
  const text = labelSpan("item-label", name);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove-item";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove photo of ${name}`);
  remove.addEventListener("click", () => removeItem(item, row));
  row.append(thumb, text, remove);
  return row;
}

// A span of text; a name is also its own tooltip, since cards cut long names short.
function labelSpan(className, text, tooltip = true) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  if (tooltip) span.title = text;
  return span;
}

function thumbnail(src, alt) {
  const img = document.createElement("img");
  img.className = "thumb";
  img.loading = "lazy";
  img.alt = alt;
  img.src = `${src}?size=${THUMBNAIL_PX}`;
  img.addEventListener("error", () => img.classList.add("missing"));
  return img;
}

// -- collection changes ------------------------------------------------------------------------------------
async function createCollection(event) {
  event.preventDefault();
  clearError();
  const input = $("#new-collection-name");
  const name = input.value.trim();
  try {
    await api("POST", "/collections", { json: { name }, write: true });
    input.value = "";
    await loadCollections(name);
    progress(`Created collection ${name}.`);
  } catch (error) {
    showError(error);
  }
}

async function deleteCollection() {
  const c = currentCollection();
  if (!c) return;
  if (!window.confirm(`Delete collection "${c.name}" and its ${plural(c.items, "photo")}? This cannot be undone.`)) {
    return;
  }
  clearError();
  try {
    await api("DELETE", collectionPath(c.name), { write: true });
    state.current = null;
    sessionStorage.removeItem("finegrain.collection");
    await loadCollections();
    progress(`Deleted collection ${c.name}.`);
  } catch (error) {
    showError(error);
  }
}

function batches(files) {
  const out = [];
  let batch = [];
  let bytes = 0;
  for (const file of files) {
    if (batch.length && (batch.length >= ADD_BATCH_FILES || bytes + file.size > addBatchBytes())) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(file);
    bytes += file.size;
  }
  if (batch.length) out.push(batch);
  return out;
}

async function addItems(event) {
  event.preventDefault();
  clearError();
  const name = state.current;
  const files = [...$("#item-files").files];
  if (!name || !files.length) return;
  const label = $("#item-label").value.trim();
  const button = $("#add-items");
  button.disabled = true;
  let added = 0;
  try {
    for (const batch of batches(files)) {
      progress(`Adding photos to ${name}: ${added} of ${files.length}…`);
      const form = new FormData();
      batch.forEach((file) => form.append("files", file, file.name));
      if (label) form.append("label", label);
      if ($("#item-detect").checked) form.append("detect", "true");
      await api("POST", `${collectionPath(name)}/items`, { body: form, write: true });
      added += batch.length;
    }
    $("#item-files").value = "";
    progress(`Added ${plural(added, "photo")} to ${name}${label ? ` as ${label}` : ""}.`);
  } catch (error) {
    if (added) progress(`Added ${added} of ${files.length} photos before an error.`);
    showError(error);
  } finally {
    button.disabled = false;
    await refresh(name);
  }
}

async function removeItem(item, row) {
  clearError();
  try {
    await api("DELETE", `${collectionPath(state.current)}/items/${encodeURIComponent(item.id)}`, { write: true });
    row.remove();
    await refresh(state.current);
  } catch (error) {
    showError(error);
  }
}

async function refresh(name) {
  try {
    await loadCollections(name);
  } catch (error) {
    showError(error);
  }
}

// -- analysing a photo ---------------------------------------------------------------------------------------
function canIdentify() {
  const c = currentCollection();
  return Boolean(state.health?.model && c && c.items > 0);
}

async function analyse(file) {
  if (!file || !state.health) return;
  const run = ++state.run;
  clearError();
  state.file = file;
  state.faces = [];
  state.selected = 0;
  setExplain(false);
  $("#faces").replaceChildren();
  $("#boxes").replaceChildren();
  $("#score").hidden = true;
  $("#mode-note").textContent = "";
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photoUrl = URL.createObjectURL(file);
  const photo = $("#photo");
  photo.src = state.photoUrl;
  photo.alt = `Your photo${file.name ? `, ${file.name}` : ""}`;
  $("#result").hidden = false;
  photo.style.width = "";
  try {
    await photo.decode();
    sizePhoto(photo);
  } catch {
    // the service names what is wrong with the file; the browser may just not show this format
  }

  const scoring = state.health.scorer ? scorePhoto(file, run) : null;
  const detect = $("#detect-faces").checked;
  progress(canIdentify() ? `Identifying against ${state.current}…` : detect ? "Finding faces…" : "");
  let faces = [];
  try {
    faces = canIdentify() ? await identify(file, detect, run) : detect ? await detectOnly(file) : [];
  } catch (error) {
    if (run !== state.run) return;
    showError(error);
    // A collection that cannot name anyone (409) still leaves the faces worth drawing.
    if (error.status === 409 && detect) faces = await detectOnly(file).catch(() => []);
  }
  if (run !== state.run) return;
  state.faces = faces;
  renderFaces();
  progress(faces.length ? `${plural(faces.length, "face")} shown.` : detect ? "No face found." : "");
  if (scoring) await scoring;
  if (state.health.scorer && faces.some((f) => f.box)) scoreFaces(run);
}

// Small photos (an LFW face is 112 px) are enlarged so their boxes can be read; tall ones fit in the window.
// A width alone keeps the aspect ratio, so the boxes' percentages stay on the faces.
function sizePhoto(photo) {
  const { naturalWidth: width, naturalHeight: height } = photo;
  if (!width || !height) return;
  const wanted = Math.max(width, Math.min(2 * width, 640));
  const fitsHeight = (0.7 * window.innerHeight * width) / height;
  photo.style.width = `${Math.round(Math.min(wanted, fitsHeight))}px`;
}

function identifyForm(file, detect) {
  const form = new FormData();
  form.append("file", file, file.name || "photo");
  form.append("k", String(MATCHES_SHOWN));
  if (detect) form.append("detect", "true");
  const threshold = $("#threshold").value.trim();
  if (threshold !== "") form.append("threshold", threshold);
  return form;
}

async function identify(file, detect, run) {
  const path = `${collectionPath(state.current)}/identify`;
  const answer = await (await api("POST", path, { body: identifyForm(file, detect) })).json();
  state.threshold = answer.threshold;
  if (!detect) {
    $("#mode-note").textContent = `Whole photo matched against ${state.current}.`;
    return [{ box: null, ...answer }];
  }
  if (answer.faces.length || run !== state.run) return answer.faces;
  // No face: the photo may show something else this collection knows, so match it whole.
  const whole = await (await api("POST", path, { body: identifyForm(file, false) })).json();
  $("#mode-note").textContent = "No face found, so the whole photo was matched.";
  return [{ box: null, ...whole }];
}

async function detectOnly(file) {
  const form = new FormData();
  form.append("file", file, file.name || "photo");
  const answer = await (await api("POST", "/detect", { body: form })).json();
  $("#mode-note").textContent = state.health.model
    ? "Faces found but not named: choose a collection with labelled photos to identify them."
    : "Faces found (this service has no embedding model, so it cannot name them).";
  return answer.faces.map((face) => ({ ...face, detectOnly: true }));
}

async function scorePhoto(file, run) {
  const form = new FormData();
  form.append("file", file, file.name || "photo");
  try {
    const { score } = await (await api("POST", "/score", { body: form })).json();
    if (run !== state.run) return;
    const element = $("#score");
    element.textContent = `Score of the whole photo: ${fixed(score)}`;
    element.hidden = false;
  } catch (error) {
    if (run === state.run) showError(error);
  }
}

async function scoreFaces(run) {
  await Promise.all(state.faces.map(async (face, index) => {
    if (!face.box) return;
    const form = new FormData();
    form.append("file", await faceCrop(face), `face-${index + 1}.png`);
    try {
      const { score } = await (await api("POST", "/score", { body: form })).json();
      const slot = document.querySelector(`.face-card[data-index="${index}"] .face-score`);
      if (run === state.run && slot) slot.textContent = `Face score ${fixed(score)}`;
    } catch {
      // the whole photo's score (or its error) is already shown
    }
  }));
}

// The square around the face grown by the service's margin, as a PNG: what the service embedded for it.
async function faceCrop(face) {
  const photo = $("#photo");
  const [x1, y1, x2, y2] = face.box;
  const side = Math.max(x2 - x1, y2 - y1) * (1 + 2 * FACE_MARGIN);
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  const size = Math.round(Math.min(512, Math.max(64, side)));
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const context = canvas.getContext("2d");
  context.fillStyle = "#808080";
  context.fillRect(0, 0, size, size);
  context.drawImage(photo, cx - side / 2, cy - side / 2, side, side, 0, 0, size, size);
  return new Promise((resolve, reject) => canvas.toBlob(
    (blob) => (blob ? resolve(blob) : reject(new Error("could not crop the face"))), "image/png"));
}

// -- showing the answer ---------------------------------------------------------------------------------------
function faceName(face) {
  if (face.detectOnly) return "face";
  return face.unknown ? "unknown" : face.label;
}

function renderFaces() {
  const photo = $("#photo");
  const width = photo.naturalWidth;
  const height = photo.naturalHeight;
  const boxes = $("#boxes");
  const cards = $("#faces");
  boxes.replaceChildren();
  cards.replaceChildren();
  state.faces.forEach((face, index) => {
    if (face.box && width && height) boxes.append(faceBox(face, index, width, height));
    cards.append(faceCard(face, index));
  });
  $("#faces-heading").hidden = !state.faces.length;
  select(Math.min(state.selected, Math.max(state.faces.length - 1, 0)));
  updateExplainHint();
}

function faceBox(face, index, width, height) {
  const [x1, y1, x2, y2] = face.box;
  const box = document.createElement("button");
  box.type = "button";
  box.className = "face-box";
  box.dataset.index = index;
  if (!face.detectOnly) box.classList.add(face.unknown ? "is-unknown" : "is-known");
  // Percentages keep the boxes on the faces however the photo is scaled.
  Object.assign(box.style, {
    left: `${(100 * x1) / width}%`,
    top: `${(100 * y1) / height}%`,
    width: `${(100 * (x2 - x1)) / width}%`,
    height: `${(100 * (y2 - y1)) / height}%`,
  });
  box.setAttribute("aria-label", `Face ${index + 1}: ${faceName(face)}`);
  const tag = document.createElement("span");
  tag.className = "face-tag";
  tag.textContent = `${index + 1} ${faceName(face)}`;
  box.append(tag);
  box.addEventListener("click", () => select(index));
  return box;
}

function faceCard(face, index) {
  const card = document.createElement("li");
  card.className = "face-card";
  card.dataset.index = index;
  const heading = document.createElement("h4");
  heading.textContent = face.box ? `Face ${index + 1}` : "Whole photo";
  card.append(heading);

  const who = document.createElement("p");
  who.className = "identity";
  const name = document.createElement("strong");
  name.className = "identity-name";
  name.textContent = faceName(face);
  who.append(name);
  if (!face.detectOnly && typeof face.confidence === "number") {
    const confidence = document.createElement("span");
    confidence.className = "confidence";
    confidence.textContent = ` similarity ${fixed(face.confidence)}`;
    who.append(confidence);
  }
  card.append(who);

  const details = [];
  if (face.unknown && face.nearest) details.push(`nearest: ${face.nearest}, below the threshold ${fixed(state.threshold)}`);
  if (face.alternatives?.length) {
    details.push(`next: ${face.alternatives.map((a) => `${a.label} ${fixed(a.similarity)}`).join(", ")}`);
  }
  if (typeof face.score === "number") details.push(`detector confidence ${fixed(face.score)}`);
  for (const text of details) {
    const line = document.createElement("p");
    line.className = "detail";
    line.textContent = text;
    card.append(line);
  }
  const faceScore = document.createElement("p");
  faceScore.className = "face-score detail";
  card.append(faceScore);

  if (face.matches?.length) {
    const list = document.createElement("ul");
    list.className = "matches";
    list.setAttribute("aria-label", `Closest photos in ${state.current}`);
    for (const match of face.matches) {
      const entry = document.createElement("li");
      entry.className = "match";
      const label = match.label ?? "unlabelled";
      const name = labelSpan("match-label", label);
      const similarity = labelSpan("match-similarity", fixed(match.similarity), false);
      entry.append(thumbnail(match.image, `Match: ${label}, similarity ${fixed(match.similarity)}`), name, similarity);
      list.append(entry);
    }
    card.append(list);
  }

  if (state.faces.length > 1) {
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "select-face";
    pick.textContent = "Select";
    pick.setAttribute("aria-label", `Select face ${index + 1} to explain`);
    pick.addEventListener("click", () => select(index));
    card.append(pick);
  }
  return card;
}

function select(index) {
  const changed = index !== state.selected;
  state.selected = index;
  document.querySelectorAll(".face-card, .face-box").forEach((element) => {
    const on = Number(element.dataset.index) === index;
    element.classList.toggle("selected", on);
    if (element.classList.contains("face-box")) element.setAttribute("aria-pressed", String(on));
  });
  document.querySelectorAll(".select-face").forEach((button) => {
    const on = button.closest(".face-card").dataset.index === String(index);
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Selected" : "Select";
  });
  updateExplainHint();
  if (changed && $("#explain-button").getAttribute("aria-pressed") === "true") explain();
}

// -- heat maps -------------------------------------------------------------------------------------------------
function explainTarget() {
  const face = state.faces[state.selected];
  if (face?.matches?.length) return { kind: "match", face, match: face.matches[0] };
  if (state.health?.scorer && state.file) return { kind: "score", face };
  return null;
}

function updateExplainHint() {
  const target = explainTarget();
  const button = $("#explain-button");
  button.disabled = !target;
  const where = target?.face?.box ? `face ${state.selected + 1}` : "the photo";
  $("#explain-hint").textContent = !target ? "Nothing to explain yet."
    : target.kind === "match" ? `Why ${where} resembles its top match (${target.match.label ?? "unlabelled"}).`
      : `What the scorer looked at in ${where}.`;
}

function setExplain(on) {
  $("#explain-button").setAttribute("aria-pressed", String(on));
  $("#explain-button").textContent = on ? "Hide explanation" : "Explain";
  $("#heatmap-figure").hidden = !on;
  if (!on && state.heatUrl) {
    URL.revokeObjectURL(state.heatUrl);
    state.heatUrl = null;
    $("#heatmap").removeAttribute("src");
  }
}

async function explain() {
  const target = explainTarget();
  if (!target) return;
  const run = state.run;
  const ticket = ++state.explaining; // a newer request (another face selected) wins over this one
  clearError();
  setExplain(true);
  $("#heatmap-figure").hidden = true;
  progress("Computing the heat map…");
  const form = new FormData();
  const where = target.face?.box ? `face ${state.selected + 1}` : "the photo";
  let alt;
  try {
    const query = target.face?.box ? await faceCrop(target.face) : state.file;
    if (target.kind === "match") {
      const stored = await (await api("GET", target.match.image)).blob();
      form.append("file_a", query, target.face?.box ? "face.png" : state.file.name || "photo");
      form.append("file_b", stored, `match-${target.match.id}`);
      alt = `Heat map: the regions of ${where} and of its match ${target.match.label ?? "unlabelled"} that made them `
        + "similar";
    } else {
      form.append("file", query, target.face?.box ? "face.png" : state.file.name || "photo");
      alt = `Heat map: the regions of ${where} that drove its score`;
    }
    const png = await (await api("POST", "/explain", { body: form })).blob();
    const pressed = $("#explain-button").getAttribute("aria-pressed") === "true";
    if (run !== state.run || ticket !== state.explaining || !pressed) return;
    if (state.heatUrl) URL.revokeObjectURL(state.heatUrl);
    state.heatUrl = URL.createObjectURL(png);
    $("#heatmap").src = state.heatUrl;
    $("#heatmap").alt = alt;
    $("#heatmap-caption").textContent = alt;
    $("#heatmap-figure").hidden = false;
    progress("");
  } catch (error) {
    if (ticket !== state.explaining) return;
    setExplain(false);
    progress("");
    showError(error);
  }
}

// -- wiring -------------------------------------------------------------------------------------------------------
function setUp() {
  const key = $("#api-key");
  key.value = sessionStorage.getItem("finegrain.apiKey") ?? "";
  key.addEventListener("input", () => sessionStorage.setItem("finegrain.apiKey", key.value));

  $("#error-dismiss").addEventListener("click", clearError);
  $("#photo-input").addEventListener("change", (event) => analyse(event.target.files[0]));

  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = [...(event.dataTransfer?.files ?? [])].find((f) => f.type.startsWith("image/"))
      ?? event.dataTransfer?.files?.[0];
    if (file) analyse(file);
  });

  $("#collection-select").addEventListener("change", async (event) => {
    state.current = event.target.value || null;
    if (state.current) sessionStorage.setItem("finegrain.collection", state.current);
    clearError();
    try {
      await loadItems();
    } catch (error) {
      showError(error);
    }
    if (state.file) analyse(state.file);
  });
  $("#threshold").addEventListener("change", () => state.file && analyse(state.file));
  $("#detect-faces").addEventListener("change", () => state.file && analyse(state.file));
  $("#create-collection-form").addEventListener("submit", createCollection);
  $("#delete-collection").addEventListener("click", deleteCollection);
  $("#add-items-form").addEventListener("submit", addItems);
  $("#explain-button").addEventListener("click", () => {
    if ($("#explain-button").getAttribute("aria-pressed") === "true") setExplain(false);
    else explain();
  });

  loadHealth().catch((error) => {
    $("#status").textContent = "The service did not answer.";
    showError(error);
  });
}

setUp();
