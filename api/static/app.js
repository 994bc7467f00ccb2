// The diffq web page: talks to the same API as everyone else, with the key kept in this browser.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_NAME = "diffq-api-key";
let currentTask = null;

function key() { return localStorage.getItem(KEY_NAME) || ""; }

async function api(method, path, body) {
  const options = { method, headers: { Authorization: "Bearer " + key() } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = (data && data.error) || { message: "HTTP " + response.status };
    const fields = error.fields ? "\n" + Object.entries(error.fields).map(([f, m]) => f + ": " + m).join("\n") : "";
    throw new Error(error.message + fields);
  }
  return data;
}

function show(messages, cls) {
  $("messages").innerHTML = "";
  for (const text of messages) {
    const p = document.createElement("p");
    p.className = cls;
    p.textContent = text;
    $("messages").appendChild(p);
  }
}

function figure(image, caption) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.src = image.url;
  img.alt = caption;
  fig.append(img, caption);
  return fig;
}

async function loadChoices() {
  try {
    const models = await api("GET", "/models");
    $("model").innerHTML = "";
    for (const model of models.models) {
      const option = new Option(model.name + (model.name === models.default ? " (default)" : ""), model.name);
      option.selected = model.name === models.default;
      $("model").add(option);
    }
    const samplers = await api("GET", "/samplers");
    for (const sampler of samplers.samplers.filter((s) => !s.alias_of)) {
      $("sampler").add(new Option(sampler.label + " (" + sampler.key + ")", sampler.key));
    }
    $("key-state").textContent = "key accepted";
    await loadGallery();
  } catch (error) {
    $("key-state").textContent = key() ? "key refused" : "no key yet";
  }
}

async function loadGallery() {
  const recent = await api("GET", "/recent?limit=12");
  $("gallery").innerHTML = "";
  for (const image of recent.images) {
    $("gallery").appendChild(figure(image, (image.prompt || "").slice(0, 40) + " · seed " + image.seed));
  }
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);  // a data: URL, which the API accepts
    reader.onerror = () => reject(new Error("could not read " + file.name));
    reader.readAsDataURL(file);
  });
}

async function submit(event) {
  event.preventDefault();
  const body = { prompt: $("prompt").value, model: $("model").value };
  const optional = { negative_prompt: $("negative").value, sampler: $("sampler").value };
  for (const [name, value] of Object.entries(optional)) if (value) body[name] = value;
  for (const name of ["width", "height", "steps", "seed"]) {
    if ($(name).value !== "") body[name] = Number($(name).value);
  }
  let path = "/generate";
  if ($("init").files.length) {
    path = "/img2img";
    body.init_img = await readFile($("init").files[0]);
    body.strength = Number($("strength").value);
  }
  $("job").hidden = false;
  $("result").innerHTML = "";
  $("progress").value = 0;
  try {
    const accepted = await api("POST", path, body);
    show(accepted.warnings, "warning");
    currentTask = accepted.task_id;
    $("cancel").hidden = false;
    $("submit").disabled = true;
    await follow(accepted.task_id);
  } catch (error) {
    $("state").textContent = "refused";
    show([error.message], "error");
  } finally {
    $("cancel").hidden = true;
    $("submit").disabled = false;
  }
}

async function follow(taskId) {
  for (;;) {
    const job = await api("GET", "/status/" + taskId + "?format=json");
    $("progress").max = job.progress.total || 1;
    $("progress").value = job.progress.step;
    $("state").textContent = job.state + " · " + job.progress.step + "/" + job.progress.total;
    if (job.state === "succeeded") {
      for (const image of job.images) $("result").appendChild(figure(image, "seed " + image.seed));
      await loadGallery();
      return;
    }
    if (job.state === "failed" || job.state === "canceled") {
      show([job.error ? job.error.message + " (" + job.error.code + ")" : job.state], "error");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_NAME, $("api-key").value.trim());
  $("api-key").value = "";
  loadChoices();
});
$("job-form").addEventListener("submit", submit);
$("cancel").addEventListener("click", () => currentTask && api("DELETE", "/tasks/" + currentTask).catch(() => {}));
$("init").addEventListener("change", () => { $("strength-box").hidden = !$("init").files.length; });
loadChoices();
