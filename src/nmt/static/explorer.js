// The attention explorer: translates the text box's sentence with one or two loaded models
// (POST /translate) and draws each hypothesis's attention as a target x source grid.
"use strict";

const $ = (id) => document.getElementById(id);
let models = {}; // name -> GET /models's description

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function describe(info) {
  const bleu = info.bleu === null ? "" : `, test BLEU ${info.bleu.toFixed(2)}`;
  const engine = info.engine === "pytorch" ? "" : `, ${info.engine}`;
  return `${info.arch}, ${info.parameters.toLocaleString("en")} parameters${bleu}${engine}`;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadModels() {
  const listed = await (await fetch("/models")).json();
  for (const info of listed) {
    models[info.name] = info;
    $("model").append(element("option", { value: info.name }, info.name));
    $("compare").append(element("option", { value: info.name }, info.name));
  }
  if (listed.length > 1) $("compare").value = listed[1].name;
}

// One grid: rows are output tokens, columns source tokens, a cell's shade its weight, scaled
// to the grid's largest (printed under it): a flat attention still shows its shape.
function grid(source, target, weights) {
  const largest = Math.max(...weights.flat(), 1e-9);
  const head = element("tr", {}, element("th"));
  for (const token of source) head.append(element("th", { scope: "col" }, token));
  const body = element("tbody");
  target.forEach((token, row) => {
    const tr = element("tr", {}, element("th", { scope: "row" }, token));
    weights[row].forEach((weight, column) => {
      const cell = element("td", { title: `${token} → ${source[column]}: ${weight.toFixed(3)}` });
      cell.style.background = `rgba(20, 70, 160, ${weight / largest})`;
      tr.append(cell);
    });
    body.append(tr);
  });
  const table = element("table", { class: "attention" }, element("thead", {}, head), body);
  const scale = element("p", { class: "about" }, `darkest: ${largest.toFixed(3)}`);
  return element("div", {}, table, scale);
}

function attentionView(info, attention) {
  const box = element("div", { class: "grid-box" });
  if (!attention) {
    box.append(element("p", { class: "none" }, `a ${info.arch} model has no attention to show`));
    return box;
  }
  const layer = element("select", { class: "layer", "aria-label": "layer" });
  attention.layers.forEach((_, i) => layer.append(element("option", { value: i }, `layer ${i + 1}`)));
  layer.value = attention.layers.length - 1; // the last layer: what the heatmaps show
  const head = element("select", { class: "head", "aria-label": "head" });
  head.append(element("option", { value: "mean" }, "mean of the heads"));
  attention.layers[0].forEach((_, i) => head.append(element("option", { value: i }, `head ${i + 1}`)));
  const draw = () => {
    const l = Number(layer.value);
    const weights = head.value === "mean" ? attention.mean[l] : attention.layers[l][Number(head.value)];
    box.replaceChildren(grid(attention.source, attention.target, weights));
  };
  layer.onchange = head.onchange = draw;
  draw();
  const controls = element("div", { class: "view" });
  if (info.layers > 1 || info.heads > 1) controls.append(layer, head);
  return element("div", {}, controls, box);
}

function panel(name, translation) {
  const info = models[name];
  const view = element("div");
  const list = element("ol", { class: "nbest" });
  translation.hypotheses.forEach((found, i) => {
    const item = element(
      "li",
      { class: "hypothesis" },
      element("span", { class: "text" }, found.text),
      element("span", { class: "score" }, found.score.toFixed(3)),
    );
    item.onclick = () => {
      for (const other of list.children) other.classList.remove("chosen");
      item.classList.add("chosen");
      view.replaceChildren(attentionView(info, found.attention));
    };
    list.append(item);
    if (i === 0) item.onclick();
  });
  if (!translation.hypotheses.length) list.append(element("li", { class: "none" }, "(empty)"));
  return element(
    "section",
    { class: "panel", "data-model": name },
    element("h2", {}, name),
    element("p", { class: "about" }, describe(info)),
    list,
    view,
  );
}

async function translate(event) {
  event.preventDefault();
  showError("");
  const text = $("text").value.replace(/\s+/g, " ").trim();
  const names = [$("model").value, $("compare").value].filter((name, i, all) =>
    name && all.indexOf(name) === i);
  const settings = { beam: Number($("beam").value), n_best: Number($("n_best").value) };
  $("go").disabled = true;
  try {
    const answers = await Promise.all(names.map(async (model) => {
      const response = await fetch("/translate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, text: [text], ...settings, attention: true }),
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(`${model}: ${answer.error}`);
      return answer;
    }));
    $("panels").replaceChildren(...answers.map((a) => panel(a.model, a.translations[0])));
  } catch (err) {
    showError(err.message);
  } finally {
    $("go").disabled = false;
  }
}

$("form").addEventListener("submit", translate);
loadModels().catch((err) => showError(`no models: ${err.message}`));
