// The moat status page: fetches the admin API (same origin; the session
// cookie set at /ui/login admits GET requests) and fills the tables. No
// framework, no build step. Every value is inserted as text, never as HTML:
// client ids, topics and reasons come from clients.
"use strict";

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(id, items, columns, empty) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (!items || items.length === 0) {
    const row = body.insertRow();
    const td = cell(row, empty, "empty");
    td.colSpan = document.querySelectorAll("#" + id + " th").length;
    return;
  }
  for (const item of items) {
    const row = body.insertRow();
    for (const col of columns) cell(row, col(item));
  }
}

function time(t) {
  if (!t) return "";
  return new Date(t).toLocaleString();
}

async function get(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) {
    window.location.assign("/ui/login");
    throw new Error("signed out");
  }
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
  return r.json();
}

async function refresh() {
  const err = document.getElementById("error");
  try {
    const [status, clients, denials, reloads] = await Promise.all([
      get("/status"), get("/clients"), get("/denials"), get("/reloads"),
    ]);
    document.getElementById("version").textContent = status.version;
    document.getElementById("summary").textContent =
      status.clients + " clients connected, " + status.sessions + " sessions, " +
      status.denials + " denials since start; up " + Math.round(status.uptime_s) + " s";
    fill("listeners", status.listeners, [l => l.name, l => l.type, l => l.address, l => l.clients], "no listener");
    fill("plugins", status.plugins, [p => p.name, p => p.decisions.join(", "), p => p.sha256.slice(0, 12), p => p.denials], "no plugin");
    fill("clients", clients, [
      c => c.id, c => c.username, c => c.listener, c => c.remote, c => c.protocol,
      c => time(c.connected_since), c => c.subscriptions.map(s => s.filter + " (QoS " + s.qos + ")").join(", "), c => c.queued,
    ], "no client connected");
    fill("denials", denials, [
      d => time(d.time), d => d.kind, d => d.client_id, d => d.username, d => d.topic, d => d.module, d => d.reason,
    ], "no denial");
    fill("reloads", reloads, [
      r => time(r.time), r => r.trigger, r => r.applied ? "applied" : "refused: " + (r.errors || []).join("; "),
      r => (r.took_ns / 1e6).toFixed(1) + " ms",
    ], "no reload since start");
    err.hidden = true;
  } catch (e) {
    err.textContent = "Cannot reach the broker: " + e.message;
    err.hidden = false;
  }
}

refresh();
setInterval(refresh, 5000);
