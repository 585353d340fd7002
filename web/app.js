// The receipts page: a list with filters and keyset paging, and a receipt
// shown as its slip. Plain JavaScript so a cheap phone loads it at once.
"use strict";

const $ = (sel) => document.querySelector(sel);
let nextBefore = null;
let newestId = 0;

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function getJson(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new Error((body.error && body.error.message) || `HTTP ${res.status}`);
  }
  return body;
}

function filterQuery() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("#filters"))) {
    if (value) params.set(key, value);
  }
  return params;
}

function row(txn) {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = `#/receipt/${txn.id}`;
  a.dataset.id = txn.id;
  const cells = [
    ["meta", `${txn.local_time} · ${txn.terminal_id}`],
    ["amount", `${txn.currency} ${txn.amount_text}`],
    ["meta", `${txn.masked_pan} · ${txn.kind}`],
    ["status " + txn.status, txn.reason && txn.status !== "approved" ? `${txn.status} · ${txn.reason.en}` : txn.status],
  ];
  for (const [cls, text] of cells) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    a.appendChild(span);
  }
  li.appendChild(a);
  return li;
}

async function load(reset) {
  const params = filterQuery();
  if (!reset && nextBefore) params.set("before", nextBefore);
  try {
    const page = await getJson(`/api/v1/transactions?${params}`);
    showError("");
    const list = $("#receipts");
    if (reset) {
      list.replaceChildren();
      newestId = page.items.length ? page.items[0].id : 0;
    }
    page.items.forEach((t) => list.appendChild(row(t)));
    nextBefore = page.next_before || null;
    $("#more").hidden = !nextBefore;
    $("#empty").hidden = list.children.length > 0;
  } catch (e) {
    showError(e.message);
  }
}

// New sales appear without a reload: poll for anything newer than the top row.
async function refresh() {
  if (!$("#detail-view").hidden) return;
  try {
    const page = await getJson(`/api/v1/transactions?${filterQuery()}&limit=1`);
    const top = page.items[0];
    if (top && (top.id !== newestId || top.status === "pending")) await load(true);
  } catch (e) {
    showError(e.message);
  }
}

async function showReceipt(id) {
  $("#list-view").hidden = true;
  $("#detail-view").hidden = false;
  $("#slip").textContent = "Loading…";
  try {
    const txn = await getJson(`/api/v1/transactions/${encodeURIComponent(id)}`);
    const reason = txn.reason && txn.status !== "approved" ? ` — ${txn.reason.en} (${txn.reason["zh-CN"]})` : "";
    $("#detail-status").textContent = `${txn.status.toUpperCase()}${reason}`;
    $("#slip").textContent = txn.slip.join("\n");
  } catch (e) {
    $("#detail-status").textContent = "";
    $("#slip").textContent = e.message;
  }
}

function route() {
  const m = location.hash.match(/^#\/receipt\/(\d+)$/);
  if (m) {
    showReceipt(m[1]);
  } else {
    $("#detail-view").hidden = true;
    $("#list-view").hidden = false;
    load(true);
  }
}

$("#filters").addEventListener("submit", (e) => {
  e.preventDefault();
  load(true);
});
$("#more").addEventListener("click", () => load(false));
window.addEventListener("hashchange", route);
route();
setInterval(refresh, 1000);
