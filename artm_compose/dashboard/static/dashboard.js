// The dashboard page: polls /api/snapshot and draws it as tables and SVG line charts (no library, no CDN).
"use strict";

const POLL_MS = 1000;
const CLUSTERS_MS = 10000;
const OVERVIEW_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";

let clusterKey = new URLSearchParams(location.search).get("cluster");

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

function bytes(value) {
  if (value === null || value === undefined) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let index = 0;
  while (Math.abs(value) >= 1000 && index < units.length - 1) { value /= 1000; index += 1; }
  return `${value.toFixed(index ? 2 : 0)} ${units[index]}`;
}

function number(value, name) {
  if (value === null || value === undefined) return "";
  if (name && name.includes("bytes")) return bytes(value);
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  return Number(value.toPrecision(4)).toString();
}

function chart(name, passes, values) {
  const width = 330, height = 170, left = 58, right = 10, top = 10, bottom = 24;
  const figure = el("figure", {class: "chart", "data-series": name});
  const last = values.filter(v => v !== null).slice(-1)[0];
  const caption = el("figcaption", {}, name);
  caption.append(el("span", {class: "last"}, number(last, name)));
  figure.append(caption);
  const image = svg("svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": name});
  const known = values.map((v, i) => [passes[i], v]).filter(p => p[1] !== null);
  let low = Math.min(...known.map(p => p[1])), high = Math.max(...known.map(p => p[1]));
  if (!(high > low)) { low -= 1; high += 1; }
  const first = passes[0], final = passes[passes.length - 1];
  const x = p => left + (final > first ? (p - first) / (final - first) : 0.5) * (width - left - right);
  const y = v => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  image.append(svg("line", {class: "axis", x1: left, y1: top, x2: left, y2: height - bottom}));
  image.append(svg("line", {class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom}));
  for (const [value, anchor] of [[high, top + 4], [low, height - bottom]]) {
    const label = svg("text", {x: left - 4, y: anchor, "text-anchor": "end"});
    label.textContent = number(value, name);
    image.append(label);
  }
  for (const [pass, anchor] of [[first, "start"], [final, "end"]]) {
    const label = svg("text", {x: x(pass), y: height - 8, "text-anchor": anchor});
    label.textContent = `pass ${pass}`;
    image.append(label);
  }
  if (known.length) {
    const path = known.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    image.append(svg("path", {class: "curve", d: path}));
  }
  for (const [pass, value] of known) {
    const point = svg("circle", {class: "point", cx: x(pass), cy: y(value), r: 3, "data-pass": pass,
                                 "data-value": value});
    const title = svg("title", {});
    title.textContent = `pass ${pass}: ${number(value, name)}`;
    point.append(title);
    image.append(point);
  }
  figure.append(image);
  return figure;
}

function drawCurves(scores) {
  const target = document.getElementById("curves");
  const series = (scores && scores.series) || {};
  const names = Object.keys(series);  // the server sends them in display order
  if (!names.length) { target.replaceChildren(el("p", {class: "empty"}, "no pass finished yet")); return; }
  target.replaceChildren(...names.map(name => chart(name, scores.passes, series[name])));
}

function drawSummary(snapshot) {
  const status = snapshot.status || {};
  const training = snapshot.training || {};
  const counts = status.counts || {};
  const redis = counts.redis || {}, executors = counts.executor || {};
  const pass = training.passes ? `${training.pass ?? 0} / ${training.passes}` : `${training.pass ?? 0}`;
  const healthy = status.healthy;
  const items = [
    ["cluster", `${snapshot.cluster} (${snapshot.runtime || "?"})`],
    ["status", status.status || snapshot.stored_status || "?"],
    ["health", healthy === undefined ? "?" : healthy ? "healthy" : "unhealthy", healthy ? "ok" : "bad"],
    ["training", training.state + (training.phase ? ` (${training.phase})` : "")],
    ["pass", pass],
    ["redis nodes up", `${redis.alive ?? "?"} / ${redis.total ?? "?"}`],
    ["executors alive", `${executors.alive ?? "?"} / ${executors.total ?? "?"}`],
  ];
  document.getElementById("summary").replaceChildren(...items.map(([label, value, kind]) =>
    el("div", {"data-field": label}, label, el("b", {class: kind}, value))));
  const problems = [...(status.problems || [])];
  for (const part of [snapshot.error, status.error, training.error, snapshot.redis_error]) if (part) problems.push(part);
  const box = document.getElementById("problems");
  box.hidden = !problems.length;
  box.textContent = problems.join("\n");
}

function progressBar(done, total) {
  const share = total ? Math.min(1, done / total) : 0;
  const bar = el("span", {class: "bar", role: "progressbar", "aria-valuenow": done ?? 0, "aria-valuemax": total ?? 0});
  bar.append(el("span", {style: `width: ${(share * 100).toFixed(1)}%`}));
  return el("span", {}, bar, ` ${done ?? 0} / ${total ?? 0}`);
}

function range(bounds) { return bounds ? `[${bounds[0]}, ${bounds[1]})` : ""; }

function drawExecutors(executors) {
  const rows = (executors || []).map(e => el("tr", {class: "executor", "data-executor": e.id,
                                                    "data-alive": e.alive ? "yes" : "no"},
    el("td", {}, e.name),
    el("td", {class: e.alive ? "ok" : e.state === "finished" ? "" : "bad"},
       e.alive ? "alive" : e.state === "finished" ? "exited" : "down"),
    el("td", {}, e.state || ""),
    el("td", {}, e.pass_number ?? ""),
    el("td", {class: "documents"}, progressBar(e.documents_done, e.documents)),
    el("td", {class: "restarts"}, e.restarts ?? 0),
    el("td", {}, e.host ? `${e.host} / ${e.pid}` : ""),
    el("td", {}, range(e.batch_range)),
    el("td", {}, range(e.token_range))));
  document.querySelector("#executors tbody").replaceChildren(...rows);
}

function slotText(slots) {
  return slots.map(([a, b]) => a === b ? `${a}` : `${a}-${b}`).join(", ");
}

function drawRedis(redis) {
  const rows = ((redis && redis.nodes) || []).map(n => el("tr", {class: "redis-node", "data-address": n.address,
                                                                  "data-role": n.role || "", "data-health": n.health},
    el("td", {}, n.address),
    el("td", {}, n.role || "?"),
    el("td", {class: n.health === "ok" ? "ok" : "bad"}, n.error ? `${n.health}: ${n.error}` : n.health),
    el("td", {class: "slots"}, n.slot_count ? `${n.slot_count} (${slotText(n.slots)})` : "0"),
    el("td", {class: "memory", "data-bytes": n.used_memory ?? ""}, bytes(n.used_memory)),
    el("td", {class: "keys"}, n.keys ?? ""),
    el("td", {}, n.connected_clients ?? ""),
    el("td", {}, (n.id || "").slice(0, 10))));
  document.querySelector("#redis tbody").replaceChildren(...rows);
}

function drawTopics(model) {
  const target = document.getElementById("topics");
  document.getElementById("model-pass").textContent = model && model.pass !== null && model.pass !== undefined
    ? `(model of pass ${model.pass})` : "";
  const topics = (model && model.topics) || [];
  if (!topics.length) { target.replaceChildren(el("p", {class: "empty"}, "no committed model")); return; }
  target.replaceChildren(...topics.map(t => el("div", {class: "topic", "data-topic": t.topic},
    el("h3", {}, t.topic),
    el("ol", {}, ...t.tokens.map(k => el("li", {class: "token", title: `p = ${k.p.toPrecision(3)}`},
      k.class_id && k.class_id !== "@default_class" ? `${k.token} (${k.class_id})` : k.token))))));
}

// The clusters this dashboard shows; an overview of them is the first page unless it shows exactly one
// cluster it was given (`dashboard --state-dir S`), whose view is then the first page.
let clusters = [];

function overviewApplies() {
  return !(clusters.length === 1 && !clusters[0].listed);
}

async function loadClusters() {
  const response = await fetch("/api/clusters");
  clusters = await response.json();
  if (!clusterKey && !overviewApplies()) clusterKey = clusters[0].key;
  const links = clusters.map(c => el("a", {href: `?cluster=${encodeURIComponent(c.key)}`, title: c.state_dir,
                                           class: c.key === clusterKey ? "current" : ""}, c.name));
  if (overviewApplies()) links.unshift(el("a", {href: "/", class: clusterKey ? "" : "current"}, "all clusters"));
  document.getElementById("clusters").replaceChildren(...links);
}

async function refresh() {
  try {
    if (!clusterKey) await loadClusters();
    if (!clusterKey) return;
    const response = await fetch(`/api/snapshot?cluster=${encodeURIComponent(clusterKey)}`);
    if (!response.ok) throw new Error(await response.text());
    const snapshot = await response.json();
    drawSummary(snapshot);
    drawCurves(snapshot.scores);
    drawExecutors(snapshot.executors);
    drawRedis(snapshot.redis);
    drawTopics(snapshot.model);
    document.getElementById("updated").textContent = `updated ${new Date(snapshot.time * 1000).toLocaleTimeString()}`;
    document.body.dataset.loaded = "yes";
  } catch (error) {
    document.getElementById("updated").textContent = `dashboard unreachable: ${error.message}`;
  } finally {
    setTimeout(refresh, POLL_MS);
  }
}

async function clusterSnapshot(cluster) {
  try {
    const response = await fetch(`/api/snapshot?cluster=${encodeURIComponent(cluster.key)}`);
    return response.ok ? await response.json() : {error: await response.text()};
  } catch (error) {
    return {error: error.message};
  }
}

function overviewRow(cluster, snapshot) {
  const status = snapshot.status || {};
  const training = snapshot.training || {};
  const listed = cluster.listed || {};
  const perplexity = ((snapshot.scores || {}).series || {}).perplexity || [];
  const healthy = status.healthy;
  const health = snapshot.error || status.error ? "unknown" : healthy === undefined ? "?" : healthy ? "healthy" : "unhealthy";
  const counts = status.counts || {};
  const members = listed.status || (counts.redis ? `${counts.redis.alive} / ${counts.redis.total} Redis up` : "");
  return el("tr", {class: "cluster-row", "data-key": cluster.key, "data-name": cluster.name, "data-health": health},
    el("td", {}, el("a", {class: "open", href: `?cluster=${encodeURIComponent(cluster.key)}`}, cluster.name)),
    el("td", {class: "runtime"}, listed.runtime || snapshot.runtime || ""),
    el("td", {}, members),
    el("td", {class: healthy ? "ok" : "bad", title: snapshot.error || status.error || ""}, health),
    el("td", {class: "training"}, training.state || ""),
    el("td", {class: "pass"}, training.passes ? `${training.pass ?? 0} / ${training.passes}` : `${training.pass ?? ""}`),
    el("td", {class: "perplexity"}, number(perplexity.filter(v => v !== null).slice(-1)[0])),
    el("td", {}, cluster.state_dir),
    el("td", {}, listed.since || ""));
}

async function refreshOverview() {
  try {
    await loadClusters();
    const snapshots = await Promise.all(clusters.map(clusterSnapshot));
    document.querySelector("#cluster-list tbody").replaceChildren(
      ...clusters.map((cluster, index) => overviewRow(cluster, snapshots[index])));
    document.getElementById("no-clusters").hidden = clusters.length > 0;
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "yes";
  } catch (error) {
    document.getElementById("updated").textContent = `dashboard unreachable: ${error.message}`;
  } finally {
    setTimeout(refreshOverview, OVERVIEW_MS);
  }
}

async function start() {
  try {
    await loadClusters();
  } catch (error) {
    document.getElementById("updated").textContent = `dashboard unreachable: ${error.message}`;
  }
  const overview = !clusterKey;
  document.getElementById("overview").hidden = !overview;
  document.getElementById("cluster-view").hidden = overview;
  if (overview) {
    refreshOverview();
  } else {
    refresh();
    setInterval(loadClusters, CLUSTERS_MS);
  }
}

start();
