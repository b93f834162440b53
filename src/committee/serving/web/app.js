// The page of `committee serve`: pick or drop pictures, POST them to /v1/predict, show each answer.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);  // text is added as text, never parsed as HTML
  return node;
}

function pct(p) { return (100 * p).toFixed(1) + " %"; }

async function loadModel() {
  const r = await fetch("/v1/model");
  model = await r.json();
  const acc = model.accuracy
    ? `, ${pct(model.accuracy.value)} accuracy on ${model.accuracy.n.toLocaleString("en")} ${model.accuracy.split} images`
    : "";
  $("about").textContent =
    `A committee of ${model.members.length} (${model.members.join(", ")}), rule ${model.rule}${acc}. ` +
    `Sets hold the true class ${pct(1 - model.prediction_sets.alpha)} of the time.`;
}

function render(file, url, p) {
  const bars = p.top_k.map((t) =>
    el("div", { class: "bar" }, el("span", {}, t.label),
      el("span", { class: "track" }, el("span", { class: "fill", style: `width:${(100 * t.probability).toFixed(1)}%` })),
      el("span", {}, pct(t.probability))));
  const head = el("tr", {}, el("th", {}, "member"), el("th", {}, "vote"), el("th", {}, "its probability"));
  const rows = Object.entries(p.members).map(([m, vote]) =>
    el("tr", {}, el("td", {}, m), el("td", vote === p.label ? {} : { class: "other" }, vote),
      el("td", {}, pct(p.member_probability[m]))));
  const words = p.notes;  // the flags in words, from the server
  const flags = el("ul", { class: "flags" }, ...(words.length
    ? words.map((w) => el("li", {}, w))
    : [el("li", { class: "ok" }, "the members agree")]));
  const set = p.prediction_set
    ? el("p", { class: "set" }, `${pct(p.set_coverage)} prediction set: {${p.prediction_set.join(", ")}}`)
    : "";
  return el("article", { class: "card", "data-label": p.label },
    el("img", { src: url, alt: file.name }),
    el("div", {}, el("div", { class: "label" }, p.label), el("div", { class: "name" }, file.name),
      ...bars, el("table", { class: "votes" }, head, ...rows), set, flags));
}

async function predict(files) {
  if (!files.length) return;
  $("status").textContent = `Asking the committee about ${files.length} picture(s)…`;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  let body;
  try {
    const r = await fetch("/v1/predict?top_k=3", { method: "POST", body: form });
    body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
  } catch (e) {
    $("status").textContent = "";
    $("results").prepend(el("p", { class: "error" }, `Could not classify: ${e.message}`));
    return;
  }
  $("status").textContent = "";
  body.predictions.forEach((p, i) => $("results").prepend(render(files[i], URL.createObjectURL(files[i]), p)));
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); predict([...e.dataTransfer.files]); });
$("picker").addEventListener("change", (e) => predict([...e.target.files]));
loadModel();
