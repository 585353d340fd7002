// The owner's page: sign-in, today's totals, receipts with search and keyset
// paging, a receipt as its slip, reports with SVG charts, terminals, and
// settings. Plain JavaScript and no libraries, so a cheap phone loads it at
// once; the hub tells an open page when something changed (server-sent
// events) and the page fetches what it shows again.
"use strict";

const $ = (sel) => document.querySelector(sel);
const VIEWS = ["login", "setup", "today", "list", "detail", "reports", "terminals", "troubleshooting", "settings"];
let session = null;
let events = null;
let nextBefore = null;
let pagesShown = 0;
let newestSeen = "";
let current = "list";

// ---- plumbing -------------------------------------------------------------

// Each error shown or cleared is counted: a load that began before a newer
// error (a form sent meanwhile) does not clear it when it ends.
let errorSeq = 0;
function showError(message) {
  errorSeq += 1;
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

function notice(message) {
  const box = $("#notice");
  box.textContent = message;
  box.hidden = false;
  setTimeout(() => { box.hidden = true; }, 3000);
}

// The hub out of reach (switched off, restarting, the phone off the shop's
// Wi-Fi): the page says so in words, keeps what it shows, and looks every
// 3 s; when the hub answers again the view is fetched again by itself.
let away = null;
function hubAway(savedAt) {
  if (savedAt) {
    // What the page shows came from the phone's copy (`sw.js`): say how old.
    $("#away").textContent = `${t("hub_away_kept")} ${localTime(savedAt)}${paren(ago(savedAt))}`;
    $("#away").hidden = false;
  }
  if (away) return;
  away = setInterval(() => {
    fetch("/healthz", { cache: "no-store" }).then((r) => {
      if (r.ok) {
        hubBack();
        route();
      }
    }).catch(() => {});
  }, 3000);
}

function hubBack() {
  if (!away) return;
  clearInterval(away);
  away = null;
  $("#away").hidden = true;
  showError("");
}

/** "5 minutes ago", in the page's language. */
function ago(iso) {
  const seconds = Math.round((new Date(iso) - Date.now()) / 1000);
  if (isNaN(seconds)) return iso || "—";
  const words = new Intl.RelativeTimeFormat(LANG, { numeric: "auto" });
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(seconds) >= size) return words.format(Math.round(seconds / size), unit);
  }
  return words.format(seconds, "second");
}

async function api(method, url, body) {
  const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && session) opts.headers["X-CSRF-Token"] = session.csrf;
  let res;
  try {
    res = await fetch(url, opts);
  } catch {
    hubAway();
    const err = new Error(t("hub_away"));
    err.code = "hub_away";
    throw err;
  }
  const savedAt = res.headers.get("x-tallybox-saved-at");
  if (savedAt) hubAway(savedAt);
  else hubBack();
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(errorText(data.error || { code: `HTTP ${res.status}` }));
    err.code = data.error && data.error.code;
    err.status = res.status;
    if (res.status === 401 && session && !url.endsWith("/password")) {
      session = null;
      signedOut(err.code);
    }
    throw err;
  }
  return data;
}

// A change: sent, said ("Saved." unless `done` says otherwise), and the view
// fetched again with `reload`; true when it went through.
async function act(method, url, body, reload, done) {
  try {
    await api(method, url, body);
    notice(done || t("saved"));
    if (reload) await reload();
    return true;
  } catch (e) {
    showError(e.message);
    return false;
  }
}

// A step not taken back by a tap: the page asks first, in a sheet at the
// bottom of the screen (kept when the list behind it redraws), saying what
// will happen; only its "yes" button does it.
function ask(question, yes, action) {
  for (const open of document.querySelectorAll(".confirm")) open.remove();
  const box = el("div", { class: "confirm", role: "alertdialog", "aria-label": question },
    el("p", {}, question),
    el("button", { type: "button", class: "danger", "data-confirm": "yes", onclick: () => { box.remove(); action(); } }, yes),
    el("button", { type: "button", class: "secondary", "data-confirm": "no", onclick: () => box.remove() }, t("cancel")));
  document.body.append(box);
  // Focus on Cancel: a stray Enter does not do it.
  box.querySelector("[data-confirm=no]").focus();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// The store's currency as the API gives it: its code and how many digits
// follow the point (2 for CNY and HKD, 0 for JPY).
function currencyOf(d) {
  return { code: d.currency, digits: d.minor_digits ?? 2 };
}

function money(minor, currency) {
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  if (currency.digits === 0) return moneyText(`${sign}${abs}`, currency.code);
  const unit = 10 ** currency.digits;
  return moneyText(`${sign}${Math.floor(abs / unit)}.${String(abs % unit).padStart(currency.digits, "0")}`, currency.code);
}

// An exact decimal amount ("1858.40") as the phone's language writes money in
// that currency: ¥1,858.40. The decimal goes in as text, so nothing is rounded.
const moneyFormats = new Map();
function moneyText(decimal, code) {
  const key = `${LANG} ${code}`;
  if (!moneyFormats.has(key)) {
    try {
      moneyFormats.set(key, new Intl.NumberFormat(LANG, { style: "currency", currency: code, currencyDisplay: code === "CNY" ? "narrowSymbol" : "symbol" }));
    } catch {
      moneyFormats.set(key, { format: (d) => `${code} ${d}` });
    }
  }
  return moneyFormats.get(key).format(decimal);
}

// Times in the store's zone (the settings'), written as receipts write
// them: 2026-12-05 14:25, whatever the phone's zone or language.
let storeZone;
function localTime(utc) {
  const d = new Date(utc);
  if (isNaN(d)) return utc;
  const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-CA", { ...options, timeZone: storeZone }).formatToParts(d);
  } catch {
    parts = new Intl.DateTimeFormat("en-CA", options).formatToParts(d);
  }
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

function table(node, head, rows) {
  node.replaceChildren();
  if (!rows.length) {
    node.append(el("tr", {}, el("td", { class: "muted" }, t("none_yet"))));
    return;
  }
  node.append(el("tr", {}, ...head.map((h) => el("th", {}, h))));
  for (const r of rows) node.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
}

function totalsCards(node, totals, currency) {
  node.replaceChildren(
    card(t("sales"), money(totals.sales_minor, currency), `${totals.sales}`),
    card(t("refunds"), money(totals.refunds_minor, currency), `${totals.refunds}`),
    card(t("voids"), money(totals.voids_minor, currency), `${totals.voids}`),
    card(t("net"), money(totals.net_minor, currency), ""),
    card(t("declined"), `${totals.declined}`, ""),
  );
}

/** `now` against `then` in per cent ("+50%", "−20%"); "" when there was nothing then. */
function changeText(now, then) {
  if (!then) return "";
  return `${now >= then ? "+" : "−"}${Math.round(Math.abs(now - then) * 100 / then)}%`;
}

// What a shop owner reads next: the average sale, the busiest hour so far,
// and the day against the same weekday last week up to this hour.
function insightCards(node, d, currency) {
  const sales = d.totals.sales;
  const average = sales ? money(Math.round(d.totals.sales_minor / sales), currency) : "—";
  const busiest = d.buckets.filter((b) => b.sales).sort((a, b) => b.net_minor - a.net_minor)[0];
  const then = d.week_ago;
  const weekday = new Intl.DateTimeFormat(LANG, { weekday: "long" }).format(new Date(`${then.date}T12:00:00`));
  const change = changeText(d.totals.net_minor, then.net_minor);
  const note = (id, label, value, line) => el("div", { class: "card", id }, el("span", { class: "label" }, label),
    el("strong", {}, value), el("span", { class: "count" }, line));
  const compared = note("week-ago", `${t("week_ago")} ${weekday}${paren(`${t("until")} ${then.until_hour}:59`)}`,
    money(then.net_minor, currency), change ? `${t("today_vs")}${change}` : t("no_sales_then"));
  compared.classList.add("wide");
  node.replaceChildren(
    note("average-sale", t("average_sale"), average, ""),
    note("busiest-hour", t("busiest_hour"), busiest ? `${busiest.key}:00` : "—", busiest ? money(busiest.net_minor, currency) : ""),
    compared);
}

function card(label, value, count) {
  return el("div", { class: "card" }, el("span", { class: "label" }, label), el("strong", {}, value),
    el("span", { class: "count" }, count ? `× ${count}` : ""));
}

function lineRows(lines, currency) {
  return lines.map((l) => [l.key, `${l.sales}`, money(l.net_minor, currency), `${l.declined}`]);
}

// ---- sign-in --------------------------------------------------------------

function show(view) {
  // Another tab starts at its top, not at the last one's scroll position.
  if (view !== current) window.scrollTo(0, 0);
  current = view;
  for (const v of VIEWS) $(`#${v}-view`).hidden = v !== view;
  const signedIn = !!session;
  $("#nav").hidden = !signedIn;
  $("#logout").hidden = !signedIn;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === navHref(view));
    // The tabs scroll sideways on a narrow phone: the open one stays in sight.
    if (a.classList.contains("active")) a.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

function navHref(view) {
  return { today: "#/today", list: "#/", detail: "#/", reports: "#/reports", terminals: "#/terminals",
    troubleshooting: "#/troubleshooting", settings: "#/settings" }[view];
}

/** Reads the sign-in once more, through the service worker, so that it
 * keeps it: signing in is a POST, which it never keeps, and the first read
 * may have come before it took the page. */
function keepSession() {
  if (session && navigator.serviceWorker && navigator.serviceWorker.controller) {
    fetch("/api/v1/session", { credentials: "same-origin" }).catch(() => {});
  }
}

/** Nothing of the shop stays on the phone once signed out. */
function forgetKept() {
  if (window.caches) caches.delete("tallybox-kept-v1").catch(() => {});
}

function signedOut(code) {
  if (events) events.close();
  events = null;
  show(code === "setup_required" ? "setup" : "login");
}

function signedIn(s) {
  session = s;
  showError("");
  $("#owner-only").hidden = s.role !== "owner";
  api("GET", "/api/v1/settings").then((x) => { storeZone = x.time_zone; }).catch(() => {});
  if (!events) {
    events = new EventSource("/api/v1/events");
    events.addEventListener("change", () => refresh());
  }
  // A new hash routes by itself (hashchange); routing here too would fetch
  // the first view twice.
  if (!location.hash || location.hash === "#") location.hash = "#/today";
  else route();
}

async function boot() {
  applyWords();
  try {
    signedIn(await api("GET", "/api/v1/session"));
  } catch (e) {
    if (e.status !== 401) showError(e.message);
    signedOut(e.code);
  }
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    const s = await api("POST", "/api/v1/session", { name: f.get("name") || "owner", password: f.get("password") });
    e.target.reset();
    signedIn(s);
    keepSession();
  } catch (err) {
    showError(err.message);
  }
});

$("#setup-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    signedIn(await api("POST", "/api/v1/setup", { code: f.get("code"), password: f.get("password") }));
    keepSession();
  } catch (err) {
    showError(err.message);
  }
});

$("#logout").addEventListener("click", async () => {
  try { await api("DELETE", "/api/v1/session"); } catch (e) { /* signed out either way */ }
  session = null;
  forgetKept();
  signedOut("unauthorized");
});

$("#lang").addEventListener("click", () => {
  switchLang();
  // What was drawn from the last checks is said again in the new language.
  if (lastChecks) showProblems(lastChecks);
  if (session) route();
});

// ---- today ----------------------------------------------------------------

// Problems where the owner looks: the Troubleshooting tab's badge counts
// the checks that are not green, and Today lists them. Fetched with Today
// (at most every 30 s, as sales redraw it), with Troubleshooting, and each
// minute while the page is open.
let problemsAt = 0;
let lastChecks = null;
async function loadProblems(force) {
  if (!force && Date.now() - problemsAt < 30000) return;
  problemsAt = Date.now();
  showProblems(await api("GET", "/api/v1/checks"));
}

function showProblems(d) {
  lastChecks = d;
  const bad = d.checks.filter((c) => c.status !== "ok")
    .sort((a, b) => WORSE[b.status] - WORSE[a.status]);
  const badge = $("#problem-badge");
  badge.hidden = !bad.length;
  badge.textContent = bad.length;
  badge.className = `badge ${bad.some((c) => c.status === "fail") ? "fail" : "warn"}`;
  // Beside the title too: on a narrow phone the tab itself may be scrolled away.
  const flag = $("#problem-flag");
  flag.hidden = !bad.length;
  flag.className = badge.className;
  flag.textContent = `⚠ ${bad.length}`;
  flag.setAttribute("aria-label", `${t("problems_title")}${colon()}${bad.length}`);
  $("#problems").hidden = !bad.length;
  $("#problem-list").replaceChildren(...bad.map((c) => el("li", { "data-check": c.id },
    el("span", { class: `dot ${c.status}` }, ""), " ",
    el("strong", {}, checkTitle(c.id)),
    el("span", { class: "muted" }, ` ${said(c, "evidence")}`))));
}

setInterval(() => { if (session) loadProblems(true).catch(() => {}); }, 60000);

/** How a transaction was paid, as a list shows it: the masked card, or the tender's name. */
function paidBy(txn) {
  if (txn.tender === "code") return `${t(`provider_${txn.provider}`)}${txn.buyer ? ` ${txn.buyer}` : ""}`;
  return txn.tender === "cash" ? t("tender_cash") : txn.masked_pan;
}

/** Takings by tender (card, cash, code), named in the page's language. */
function tenderTable(node, lines, currency) {
  const named = lines.map((l) => ({ ...l, key: t(`tender_${l.key}`) }));
  table(node, [t("tender"), t("sales"), t("net"), t("declined")], lineRows(named, currency));
}

async function loadToday() {
  loadProblems(false).catch((e) => showError(e.message));
  const d = await api("GET", "/api/v1/today");
  $("#today-date").textContent = d.date;
  $("#alerts").hidden = !d.alerts.length;
  $("#alert-list").replaceChildren(...d.alerts.slice().reverse().map((a) => el("li", {},
    el("strong", {}, `${a.local_time.slice(11)} ${a.terminal_id} ${t(`rule_${a.rule}`)}`),
    el("span", { class: "muted" }, ` · ${t(`a_${a.action}`)} · ${said(a, "detail")}`))));
  totalsCards($("#today-totals"), d.totals, currencyOf(d));
  insightCards($("#today-insights"), d, currencyOf(d));
  const names = Object.fromEntries(d.terminals.map((x) => [x.id, x.name]));
  table($("#today-terminals"), [t("terminal"), t("sales"), t("net"), t("declined")],
    lineRows(d.by_terminal, currencyOf(d)).map((r) => [names[r[0]] && names[r[0]] !== r[0] ? `${names[r[0]]}${paren(r[0])}` : r[0], ...r.slice(1)]));
  tenderTable($("#today-tenders"), d.by_tender, currencyOf(d));
  table($("#today-brands"), [t("brand"), t("sales"), t("net"), t("declined")], lineRows(d.by_brand, currencyOf(d)));
}

// ---- receipts -------------------------------------------------------------

function filterQuery() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("#filters"))) {
    if (value) params.set(key, value.trim());
  }
  return params;
}

function statusText(txn) {
  const s = t(`st_${txn.status}`);
  if (txn.reason && txn.status !== "approved") return `${s} · ${LANG === "en" ? txn.reason.en : txn.reason["zh-CN"]}`;
  return s;
}

// Money back reads as money back: a void or refund with a minus sign and
// "Voided" / "Refunded", a balance inquiry without an amount.
function amountOf(txn) {
  if (txn.kind === "balance") return "—";
  const back = txn.kind === "void" || txn.kind === "refund" ? "−" : "";
  return `${back}${moneyText(txn.amount_text, txn.currency)}`;
}

function kindStatus(txn) {
  if (txn.status !== "approved") return statusText(txn);
  return { void: t("st_voided"), refund: t("st_refunded"), balance: t("st_balance_done") }[txn.kind] || statusText(txn);
}

// In the list, a sale undone later says so too (its page lists the undoings).
function listStatus(txn) {
  if (txn.kind !== "sale" || txn.status !== "approved") return kindStatus(txn);
  if (txn.voided) return t("voided");
  if (txn.refunded && !/^0(\.0+)?$/.test(txn.refunded)) {
    return `${kindStatus(txn)} · ${t("refunded")} ${moneyText(txn.refunded, txn.currency)}`;
  }
  return kindStatus(txn);
}

function row(txn) {
  return el("li", {}, el("a", { href: `#/receipt/${txn.id}`, "data-id": txn.id },
    el("span", { class: "meta" }, `${txn.local_time} · ${txn.terminal_id}`),
    el("span", { class: `amount ${txn.kind}` }, amountOf(txn)),
    el("span", { class: "meta" }, `${paidBy(txn)} · ${t(`k_${txn.kind}`)}`),
    el("span", { class: `status ${txn.status} ${txn.kind}${txn.voided ? " undone" : ""}` }, listStatus(txn))));
}

async function loadReceipts(reset) {
  const params = filterQuery();
  $("#csv").href = `/api/v1/transactions.csv?${params}`;
  if (!reset && nextBefore) params.set("before", nextBefore);
  const page = await api("GET", `/api/v1/transactions?${params}`);
  const list = $("#receipts");
  if (reset) {
    list.replaceChildren();
    pagesShown = 0;
    newestSeen = page.items.length ? `${page.items[0].id}/${page.items[0].updated_at}` : "";
  }
  pagesShown += 1;
  page.items.forEach((x) => list.append(row(x)));
  nextBefore = page.next_before || null;
  $("#more").hidden = !nextBefore;
  // What the search found, and a way back to everything.
  const filtered = [...filterQuery().keys()].length > 0;
  const shown = list.children.length;
  $("#empty").hidden = shown > 0;
  $("#empty").textContent = filtered ? t("no_match") : t("empty");
  $("#result-count").textContent = !shown ? "" : nextBefore
    ? `${shown} ${t("shown_more")}` : `${shown} ${t(filtered ? "found" : "in_all")}`;
  $("#clear-filters").hidden = !filtered;
  // The folded filters say how many of them are set.
  const folded = [...filterQuery().keys()].filter((k) => k !== "last4" && k !== "amount").length;
  $("#filters-set").textContent = `${folded}`;
  $("#filters-set").hidden = !folded;
  $("#list-end").textContent = !nextBefore && shown ? t("end_of_list") : "";
}

// The terminal filter lists the checkouts by name.
async function loadTerminalChoices() {
  const d = await api("GET", "/api/v1/terminals");
  const select = $("#filters [name=terminal]");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, t("any_terminal")),
    ...d.terminals.map((x) => el("option", { value: x.id }, x.name === x.id ? x.id : `${x.name}${paren(x.id)}`)));
  select.value = chosen;
}

$("#clear-filters").addEventListener("click", () => {
  $("#filters").reset();
  loadReceipts(true).then(() => showError("")).catch((err) => showError(err.message));
});

// Infinite scroll: the next page loads as the end of the list comes into view.
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && nextBefore && current === "list") {
    loadReceipts(false).catch((e) => showError(e.message));
  }
}).observe($("#list-end"));

$("#filters").addEventListener("submit", (e) => {
  e.preventDefault();
  loadReceipts(true).then(() => showError("")).catch((err) => showError(err.message));
});
$("#more").addEventListener("click", () => loadReceipts(false).catch((e) => showError(e.message)));

async function loadReceipt(id) {
  $("#slip").textContent = "…";
  const txn = await api("GET", `/api/v1/transactions/${encodeURIComponent(id)}`);
  const undone = [];
  if (txn.voided) undone.push(t("voided"));
  if (txn.refunded && !/^0(\.0+)?$/.test(txn.refunded)) undone.push(`${t("refunded")} ${moneyText(txn.refunded, txn.currency)}`);
  const status = $("#detail-status");
  status.className = `status ${txn.status} ${txn.kind}`;
  status.replaceChildren(`${t(`k_${txn.kind}`)} · ${amountOf(txn)} · ${kindStatus(txn)}${undone.length ? ` · ${undone.join(" · ")}` : ""}`);
  for (const u of txn.undone_by || []) {
    status.append(" · ", el("a", { href: `#/receipt/${u.id}`, "data-undoing": u.id },
      `${t(`k_${u.kind}`)} #${u.id} ${moneyText(u.amount_text, txn.currency)} ${t(`st_${u.status}`)}`));
  }
  if (txn.original_id) {
    status.append(" · ", el("a", { href: `#/receipt/${txn.original_id}`, "data-original": txn.original_id },
      `${t(txn.kind === "void" ? "void_of" : "refund_of")} #${txn.original_id}`));
  }
  $("#slip").textContent = txn.slip.join("\n");
  const form = $("#reprint-form");
  form.hidden = txn.status !== "approved";
  form.dataset.id = txn.id;
  if (!form.hidden) {
    const d = await api("GET", "/api/v1/terminals");
    const online = d.terminals.filter((x) => x.online);
    form.terminal.replaceChildren(...online.map((x) =>
      el("option", { value: x.id }, x.name === x.id ? x.id : `${x.name}${paren(x.id)}`)));
    if (online.some((x) => x.id === txn.terminal_id)) form.terminal.value = txn.terminal_id;
    form.hidden = !online.length;
  }
  await showUndo(txn);
  const share = $("#share");
  share.hidden = !txn.receipt_token;
  if (txn.receipt_token) {
    $("#share-qr").src = `/r/${txn.receipt_token}/qr.svg`;
    $("#share-link").href = `/r/${txn.receipt_token}`;
    $("#share-link").textContent = txn.receipt_link || `/r/${txn.receipt_token}`;
  }
}

// A refund or void of this sale from the phone (owner only): the checkout
// picked asks for the card; the page follows the order until the checkout
// sends it, then shows the sale again with what became of it.
async function showUndo(txn) {
  const form = $("#undo-form");
  const open = session.role === "owner" && txn.kind === "sale" && txn.status === "approved"
    && !txn.voided && !/^0(\.0+)?$/.test(txn.refundable);
  form.hidden = !open;
  if (!open) return;
  form.dataset.id = txn.id;
  form.dataset.own = txn.terminal_id;
  // A cash sale's money goes back from the checkout's drawer, not to a card.
  form.dataset.tender = txn.tender;
  $("#undo-help").textContent = byTender("undo_help");
  form.dataset.currency = txn.currency;
  form.amount.value = txn.refundable;
  const d = await api("GET", "/api/v1/terminals");
  const online = d.terminals.filter((x) => x.online);
  form.terminal.replaceChildren(...online.map((x) =>
    el("option", { value: x.id }, x.name === x.id ? x.id : `${x.name}${paren(x.id)}`)));
  if (online.some((x) => x.id === txn.terminal_id)) form.terminal.value = txn.terminal_id;
  undoKind();
}

// A void gives back the whole sale at the sale's own checkout.
function undoKind() {
  const form = $("#undo-form");
  const isVoid = form.kind.value === "void";
  form.amount.closest("label").hidden = isVoid;
  form.amount.required = !isVoid;
  if (isVoid) form.terminal.value = form.dataset.own;
}
$("#undo-form").kind.addEventListener("change", undoKind);

let undoTimer = null;
$("#undo-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target;
  const kind = f.kind.value;
  const body = { kind, terminal: f.terminal.value };
  if (kind === "refund") body.amount = f.amount.value.trim();
  const what = kind === "refund" ? `${t("k_refund")} ${moneyText(body.amount || "0", f.dataset.currency)}` : t("k_void");
  ask(`${what} · #${f.dataset.id} · ${body.terminal}${colon()}${byTender("ask_undo")}`, t("yes_send"), async () => {
    const said = $("#undo-state");
    try {
      const o = await api("POST", `/api/v1/transactions/${f.dataset.id}/undo`, body);
      said.textContent = `${o.terminal}${colon()}${byTender("undo_sent")}`;
      followOrder(o.order, f.dataset.id);
    } catch (err) {
      showError(err.message);
    }
  });
});

/** The words for how the sale was paid: a card, cash, or a payment code. */
function byTender(key) {
  const tender = $("#undo-form").dataset.tender;
  return t(tender === "cash" || tender === "code" ? `${key}_${tender}` : key);
}

function followOrder(order, saleId) {
  clearTimeout(undoTimer);
  undoTimer = setTimeout(async () => {
    if (location.hash !== `#/receipt/${saleId}`) return;
    const o = await api("GET", `/api/v1/orders/${encodeURIComponent(order)}`).catch(() => ({ state: "waiting" }));
    if (o.state === "waiting") return followOrder(order, saleId);
    if (o.state === "lapsed") {
      $("#undo-state").textContent = byTender("undo_lapsed");
      return;
    }
    // Taken: the checkout read the card; the sale shows the outcome as it comes.
    await loadReceipt(saleId);
    $("#undo-state").textContent = byTender("undo_taken");
  }, 2000);
}

$("#reprint-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  act("POST", `/api/v1/transactions/${f.dataset.id}/reprint`, { terminal: f.terminal.value }, null, t("reprint_sent"));
});

// ---- reports --------------------------------------------------------------

function chart(buckets, currency, hourly) {
  const w = 340, h = 160, pad = 18;
  const max = Math.max(1, ...buckets.map((b) => b.net_minor));
  const step = (w - pad) / buckets.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 16}`);
  svg.setAttribute("role", "img");
  buckets.forEach((b, i) => {
    const bh = Math.max(0, (b.net_minor / max) * (h - pad));
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", (pad + i * step + 1).toFixed(1));
    r.setAttribute("y", (h - bh).toFixed(1));
    r.setAttribute("width", Math.max(1, step - 2).toFixed(1));
    r.setAttribute("height", bh.toFixed(1));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${b.key}${colon()}${money(b.net_minor, currency)}${paren(b.sales)}`;
    r.append(title);
    svg.append(r);
    const every = hourly ? 3 : Math.ceil(buckets.length / 8);
    if (i % every === 0) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", (pad + i * step).toFixed(1));
      label.setAttribute("y", h + 13);
      label.textContent = hourly ? b.key : b.key.slice(5);
      svg.append(label);
    }
  });
  const top = document.createElementNS(ns, "text");
  top.setAttribute("x", 4);
  top.setAttribute("y", 10);
  top.textContent = money(max, currency);
  svg.append(top);
  // In words too, for a screen reader and for the owner: the busiest bar.
  const busiest = buckets.reduce((a, b) => (b.net_minor > a.net_minor ? b : a), buckets[0] || { net_minor: 0 });
  const said = busiest && busiest.net_minor > 0
    ? `${t(hourly ? "busiest_hour" : "busiest_day")} ${busiest.key}${colon()}${money(busiest.net_minor, currency)}${paren(busiest.sales)}`
    : t("no_sales_in_period");
  svg.setAttribute("aria-label", `${t(hourly ? "chart_hour" : "chart_day")}. ${said}`);
  return { svg, said };
}

function dayBefore(iso) {
  const d = new Date(`${iso}T12:00:00`);
  d.setDate(d.getDate() - 1);
  return d.toISOString().slice(0, 10);
}

/** A custom range asks for its first and last day instead of one date. */
function showRangeFields() {
  const form = $("#report-form");
  const range = form.period.value === "range";
  form.classList.toggle("range", range);
  form.date.hidden = range;
  form.date.disabled = range;
  form.querySelectorAll("label.range").forEach((l) => { l.hidden = !range; });
  for (const field of [form.from, form.to]) {
    field.disabled = !range;
    field.required = range;
  }
  if (range && !form.to.value) {
    const today = new Date().toLocaleDateString("sv");
    form.to.value = today;
    form.from.value = `${today.slice(0, 8)}01`;
  }
}

/** The days a period covers ("2026-11-03 – 2026-11-09"), `to` excluded. */
function daysSpan(from, to) {
  const last = dayBefore(to);
  return from === last ? from : `${from} – ${last}`;
}

/** The period against the one before it: its net and the change in per cent. */
function comparedCard(node, r, currency) {
  const then = r.previous.totals;
  const change = changeText(r.totals.net_minor, then.net_minor);
  const label = `${t(`before_${r.period}`)}${paren(daysSpan(r.previous.from, r.previous.to))}`;
  node.replaceChildren(el("div", { class: "card wide", id: "compared" }, el("span", { class: "label" }, label),
    el("strong", {}, money(then.net_minor, currency)),
    el("span", { class: "count" }, change ? `${t("this_period_vs")}${change}` : t("no_sales_then"))));
}

async function loadReport() {
  const form = $("#report-form");
  if (!form.date.value) form.date.value = new Date().toLocaleDateString("sv");
  const params = new URLSearchParams(new FormData(form));
  const seq = errorSeq;
  const r = await api("GET", `/api/v1/reports?${params}`);
  if (errorSeq === seq) showError("");
  totalsCards($("#report-totals"), r.totals, currencyOf(r));
  const average = r.totals.sales ? money(Math.round(r.totals.sales_minor / r.totals.sales), currencyOf(r)) : "—";
  $("#report-totals").append(el("div", { class: "card", id: "report-average" },
    el("span", { class: "label" }, t("average_sale")), el("strong", {}, average)));
  comparedCard($("#report-compared"), r, currencyOf(r));
  const hourly = r.period === "day";
  $("#chart-title").textContent = t(hourly ? "chart_hour" : "chart_day");
  const drawn = chart(r.buckets, currencyOf(r), hourly);
  $("#chart").replaceChildren(drawn.svg);
  $("#chart-said").textContent = drawn.said;
  table($("#report-terminals"), [t("terminal"), t("sales"), t("net"), t("declined")], lineRows(r.by_terminal, currencyOf(r)));
  tenderTable($("#report-tenders"), r.by_tender, currencyOf(r));
  table($("#report-brands"), [t("brand"), t("sales"), t("net"), t("declined")], lineRows(r.by_brand, currencyOf(r)));
  const cashiers = r.by_cashier.map((l) => ({ ...l, key: l.key || t("no_cashier") }));
  table($("#report-cashiers"), [t("cashier"), t("sales"), t("net"), t("declined")], lineRows(cashiers, currencyOf(r)));
  $("#report-csv").href = `/api/v1/transactions.csv?from=${r.from}&to=${dayBefore(r.to)}`;
  const list = $("#report-settlements");
  list.replaceChildren(...r.settlements.map((s) => el("li", {},
    el("strong", {}, `${t("batch")} ${s.batch_no} · ${s.balanced ? t("balanced") : t("out_of_balance")}`),
    el("span", { class: "muted" }, ` ${localTime(s.at)}`),
    el("pre", { class: "slip" }, s.report.join("\n")))));
  if (!r.settlements.length) list.append(el("li", { class: "muted" }, t("none_yet")));
  drawerCounts($("#report-drawers"), r.drawer_counts, currencyOf(r));
  await loadBills();
}

/** Each shift's drawer count: expected against counted, over or short. */
function drawerCounts(node, counts, currency) {
  node.replaceChildren(...counts.map((c) => {
    const d = c.counted - c.expected;
    const verdict = d === 0 ? t("drawer_ok") : `${t(d > 0 ? "drawer_over" : "drawer_short")} ${money(Math.abs(d), currency)}`;
    return el("li", { "data-count": c.id },
      el("strong", {}, `${c.local_time.slice(5, 16)} · ${c.terminal_id}${c.cashier ? ` · ${c.cashier}` : ""} · ${verdict}`),
      el("span", { class: "muted" }, ` ${t("drawer_expected")} ${money(c.expected, currency)} · ${t("drawer_counted")} ${money(c.counted, currency)} · ${c.cash_sales} ${t("tender_cash")} · ${t("no_sale")} ${c.no_sales}`));
  }));
  if (!counts.length) node.append(el("li", { class: "muted" }, t("none_yet")));
}

/** `n` things in words: the key's `_1` or `_n` form, `{n}` filled in. */
function counted(key, n) {
  return t(n === 1 ? `${key}_1` : `${key}_n`).replace("{n}", n);
}

/** Money paid and given back, as "¥50.50 − ¥12.50". */
function moneyMoved(m, currency) {
  return m.refunded ? `${money(m.paid, currency)} − ${money(m.refunded, currency)}` : money(m.paid, currency);
}

/** Each provider's bill of a day against the hub's code payments. */
function showBills(d) {
  $("#bills-form").hidden = !d.providers.length;
  if (d.day) $("#bills-form").day.value = d.day;
  // The providers bill in yuan.
  const currency = { code: "CNY", digits: 2 };
  const items = d.checks.map((c) => {
    const who = t(`provider_${c.provider}`);
    if (c.error) {
      return el("li", { class: "bill", "data-provider": c.provider },
        el("strong", {}, `${who}${colon()}${t("bill_none")}`), el("div", { class: "muted" }, c.error));
    }
    const r = c.result;
    const same = !r.differences.length;
    return el("li", { class: "bill", "data-provider": c.provider },
      el("strong", { class: same ? "" : "status declined" },
        `${who}${colon()}${same ? t("bill_agrees") : counted("bill_differ", r.differences.length)}`),
      el("div", { class: "muted" }, `${counted("bill_matched", r.matched)} · ${t("bill_hub")} ${moneyMoved(r.hub, currency)} · ${t("bill_theirs")} ${moneyMoved(r.bill, currency)} · ${t("checked_at")} ${localTime(c.checked_at)}`),
      ...r.differences.map((x) => el("div", { class: "difference", "data-what": x.what },
        el("span", {}, `${t(`bill_${x.what}`)}${x.near_midnight ? ` ${t("bill_midnight")}` : ""}`),
        el("span", { class: "muted" }, ` · ${t("bill_order")} ${x.out_trade_no} · ${t("bill_hub")} ${moneyMoved(x.hub, currency)} · ${t("bill_theirs")} ${moneyMoved(x.bill, currency)}`))));
  });
  if (!items.length) items.push(el("li", { class: "muted" }, t("none_yet")));
  $("#bills").replaceChildren(...items);
}

// A check being made saves each provider's result as it comes; a refresh
// meanwhile (the store changed) reads once the check is done, not half of it.
let billsCheck = Promise.resolve();

async function loadBills() {
  await billsCheck.catch(() => {});
  const day = $("#bills-form").day.value;
  showBills(await api("GET", `/api/v1/code-bills${day ? `?day=${day}` : ""}`));
}

$("#bills-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const button = e.target.querySelector("button");
  button.disabled = true;
  billsCheck = api("POST", "/api/v1/code-bills", { day: e.target.day.value });
  billsCheck
    .then(showBills)
    .catch((err) => showError(err.message))
    .finally(() => { button.disabled = false; });
});

$("#report-form").period.addEventListener("change", showRangeFields);
$("#report-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadReport().catch((err) => showError(err.message));
});

// ---- terminals ------------------------------------------------------------

function health(d) {
  if (!d) return "";
  const parts = [`${t("swipes")} ${d.swipes}${paren(`${d.swipe_errors} ${t("swipe_errors")}`)}`,
    `${t("taps")} ${d.taps}${paren(`${d.tap_errors} ${t("tap_errors")}`)}`];
  if (d.cards_stuck) parts.push(`${t("cards_stuck")} ${d.cards_stuck}`);
  parts.push(`${t("printer")} ${d.printer ? t(`pr_${d.printer}`) : t("ok")}`);
  if (d.slips_waiting) parts.push(`${t("slips_waiting")} ${d.slips_waiting}`);
  return parts.join(" · ");
}

/** Whether a checkout's devices need someone: its printer stopped, a card stuck. */
function trouble(d) {
  return !!d && (!!d.printer || d.cards_stuck > 0);
}

function terminalItem(x) {
  const reason = el("input", { name: "reason", placeholder: t("freeze_reason"), maxlength: "120" });
  const name = el("input", { name: "name", value: x.name, maxlength: "24", "aria-label": t("name") });
  const frozenHere = x.frozen && !x.store_frozen;
  return el("li", { class: `terminal${x.frozen ? " frozen" : ""}`, "data-id": x.id },
    el("div", { class: "head" },
      el("span", { class: `dot ${!x.online ? "off" : trouble(x.devices) ? "warn" : "on"}` }, ""),
      el("strong", {}, x.name === x.id ? x.id : `${x.name}${paren(x.id)}`),
      el("span", { class: "muted", title: localTime(x.last_seen) }, ` ${x.online ? t("online") : t("offline")} · ${t("last_seen")} ${ago(x.last_seen)}`)),
    el("div", { class: "muted" }, `${t("version")} ${x.version || "?"}${x.cashier ? ` · ${t("cashier")} ${x.cashier}` : ""}`),
    el("div", { class: "muted" }, health(x.devices)),
    el("div", { class: `pairing ${x.pairing}` }, t(`p_${x.pairing}`),
      session.role === "owner" && x.pairing === "paired"
        ? el("button", { type: "button", class: "secondary", onclick: () => ask(`${x.id}${colon()}${t("ask_revoke")}`, t("yes_revoke"),
          () => act("DELETE", `/api/v1/terminals/${x.id}/key`, undefined, loadTerminals, `${x.id}${colon()}${t("done_revoked")}`)) }, t("revoke"))
        : ""),
    x.frozen ? el("div", { class: "status declined" }, `${t("frozen")}${colon()}${said(x, "frozen")}`) : "",
    el("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      act("PUT", `/api/v1/terminals/${x.id}`, { name: name.value }, loadTerminals);
    } }, name, el("button", { type: "submit", class: "secondary" }, t("rename"))),
    frozenHere
      ? el("button", { type: "button", class: "secondary", onclick: () => act("DELETE", `/api/v1/freezes/${x.id}`, undefined, loadTerminals) }, t("unfreeze"))
      : el("form", { class: "inline", onsubmit: (e) => {
        e.preventDefault();
        // Left blank, the reason is said in the page's language (shown back on this page).
        const why = reason.value.trim() || `${t("frozen_by")} ${session.account}`;
        ask(`${x.id}${colon()}${t("ask_freeze")}`, t("yes_freeze"),
          () => act("POST", "/api/v1/freezes", { scope: x.id, reason: why }, loadTerminals, `${x.id}${colon()}${t("done_frozen")}`));
      } }, reason, el("button", { type: "submit", class: "danger" }, t("freeze"))));
}

async function loadTerminals() {
  const d = await api("GET", "/api/v1/terminals");
  const list = $("#terminal-list");
  list.replaceChildren(...d.terminals.map((x) => terminalItem({ ...x, store_frozen: d.store_frozen })));
  if (!d.terminals.length) list.append(el("li", { class: "muted" }, t("no_terminals")));
  $("#store-frozen").textContent = d.store_frozen ? `${t("store_is_frozen")} ${said(d, "store_frozen")}` : t("not_frozen");
  $("#store-freeze").hidden = !!d.store_frozen;
  $("#store-unfreeze").hidden = !d.store_frozen;
  $("#pairing").hidden = session.role !== "owner";
  if (session.role === "owner") await showPairing(await api("GET", "/api/v1/pairing"));
}

// The open pairing: its code and QR code, and how it is going (checked
// every two seconds while the page shows it).
let pairingTimer = null;
async function showPairing(p) {
  clearTimeout(pairingTimer);
  $("#pairing-open").hidden = !p.open;
  $("#pairing-start").hidden = p.open && !p.paired;
  $("#pairing-for").hidden = p.open && !p.paired;
  if (!p.open) return;
  $("#pairing-code").textContent = `${p.code.slice(0, 4)} ${p.code.slice(4)}`;
  $("#pairing-qr").src = `/api/v1/pairing/qr.svg?c=${p.code}`;
  const others = p.others > 0 ? ` · ${t("pair_others")} ${p.others}${paren(p.last_other)}` : "";
  $("#pairing-state").textContent = p.paired
    ? `${t("pair_done")} ${p.paired}`
    : `${p.terminal ? `${p.terminal}: ` : ""}${t("pair_waiting")} ${p.tries_left} · ${Math.ceil(p.expires_in_s / 60)} ${t("pair_expires")}${others}`;
  if (p.paired) {
    $("#pairing-open").hidden = true;
    notice(`${t("pair_done")} ${p.paired}`);
    await act("DELETE", "/api/v1/pairing", undefined, loadTerminals, `${t("pair_done")} ${p.paired}`);
    return;
  }
  pairingTimer = setTimeout(() => {
    if (current === "terminals") api("GET", "/api/v1/pairing").then(showPairing).catch((e) => showError(e.message));
  }, 2000);
}

$("#pairing-start").addEventListener("click", () => {
  // A code for one named checkout: another id's attempts cannot use it up.
  const terminal = $("#pairing-terminal").value.trim();
  if (!terminal) return showError(t("pair_need_id"));
  api("POST", "/api/v1/pairing", { terminal }).then(showPairing).catch((e) => showError(e.message));
});
$("#pairing-cancel").addEventListener("click", () => act("DELETE", "/api/v1/pairing", undefined, loadTerminals));

$("#store-freeze").addEventListener("click", () => ask(t("ask_freeze_store"), t("yes_freeze"),
  () => act("POST", "/api/v1/freezes", { scope: "store", reason: `${t("frozen_by")} ${session.account}` }, loadTerminals, t("done_store_frozen"))));
$("#store-unfreeze").addEventListener("click", () => act("DELETE", "/api/v1/freezes/store", undefined, loadTerminals));
$("#evidence-form").addEventListener("submit", (e) => {
  e.preventDefault();
  location.href = `/api/v1/evidence?${new URLSearchParams(new FormData(e.target))}`;
});

// ---- troubleshooting ------------------------------------------------------

/** What the hub said, in the page's language: `evidence` or its `evidence_zh-CN`
 * (kept since the hub says both; older history entries have English only). */
function said(x, field) {
  return (LANG === "zh-CN" && x[`${field}_zh-CN`]) || x[field];
}

/** A check's title in words: `terminal.T1.printer` reads "T1 · printer" (打印机). */
function checkTitle(id) {
  const m = /^terminal\.([^.]+)\.(\w+)$/.exec(id);
  if (m) return `${m[1]} · ${t(`ck_${m[2]}`)}`;
  return t(`ck_${id}`);
}

function areaTitle(area) {
  return area.startsWith("terminal.") ? area.slice("terminal.".length) : t(`area_${area}`);
}

/** The area a check belongs to: `terminal.T1`, `hub`, `store`, `payments`, `network`. */
function areaOf(id) {
  const parts = id.split(".");
  return parts[0] === "terminal" ? `${parts[0]}.${parts[1]}` : parts[0];
}

const WORSE = { ok: 0, warn: 1, fail: 2 };

/** The owner's buttons for a check: what fixes or tests that part. */
function checkButtons(c) {
  if (c.id === "store.history" && c.status !== "ok") {
    return [el("button", { type: "button", class: "secondary", "data-action": "accept-loss",
      onclick: () => confirm(t("accept_loss_confirm"))
        && act("POST", "/api/v1/history/accept-loss", {}, loadChecks, t("saved")) }, t("accept_loss"))];
  }
  const m = /^terminal\.([^.]+)\.(\w+)$/.exec(c.id);
  if (!m) return [];
  const [, tid, what] = m;
  const base = `/api/v1/terminals/${encodeURIComponent(tid)}`;
  const button = (key, path, done) => el("button", { type: "button", class: "secondary", "data-action": path,
    onclick: () => act("POST", `${base}/${path}`, undefined, loadChecks, t(done)) }, t(key));
  return {
    // Out of paper: the new roll is the fix, beside the failing check.
    printer: c.status !== "ok" && c.evidence.includes("Paper out")
      ? [button("new_roll", "new-roll", "saved"), button("test_slip", "test-slip", "sent")]
      : [button("test_slip", "test-slip", "sent")],
    paper: [button("new_roll", "new-roll", "saved"), button("test_slip", "test-slip", "sent")],
    reader: [button("reader_cleaned", "reader-cleaned", "saved")],
    reader_cleaning: [button("reader_cleaned", "reader-cleaned", "saved")],
    restarts: [button("restart", "restart", "sent")],
    version: [button("restart", "restart", "sent")],
  }[what] || [];
}

async function loadChecks() {
  const d = await api("GET", "/api/v1/checks");
  problemsAt = Date.now();
  showProblems(d);
  const bad = d.checks.filter((c) => c.status !== "ok");
  $("#checks-summary").textContent = `${t(`checks_${d.status}`)} ${bad.length ? bad.length : ""}`;
  const areas = new Map();
  for (const c of d.checks) {
    const a = areaOf(c.id);
    if (!areas.has(a) || WORSE[c.status] > WORSE[areas.get(a)]) areas.set(a, c.status);
  }
  $("#areas").replaceChildren(...[...areas].sort().map(([a, st]) => el("li", { class: `area ${st}`, "data-area": a },
    el("span", { class: `dot ${st}` }, ""), ` ${areaTitle(a)}`)));
  // A redraw (any change in the store brings one) keeps open what the owner opened.
  const opened = new Set([...$("#checks").querySelectorAll("details[open]")].map((x) => x.closest("li").dataset.id));
  const item = (c) => {
    const body = el("details", c.status === "ok" && !opened.has(c.id) ? {} : { open: "" },
      el("summary", {}, el("span", { class: `dot ${c.status}` }, ""), el("strong", {}, ` ${checkTitle(c.id)} `),
        el("span", { class: "muted" }, said(c, "evidence"))),
      el("div", {}, `${t("fix")} ${LANG === "zh-CN" ? c["fix_zh-CN"] : c.fix_en}`),
      el("div", { class: "row" }, ...checkButtons(c)));
    return el("li", { class: `check ${c.status}`, "data-id": c.id }, body);
  };
  // What needs a look, each open; the green ones folded into one line below.
  const good = d.checks.filter((c) => c.status === "ok");
  const fine = el("li", { id: "checks-ok", class: "check ok", "data-id": "checks-ok" },
    el("details", opened.has("checks-ok") ? { open: "" } : {},
      el("summary", {}, el("span", { class: "dot ok" }, ""), el("strong", {}, ` ${good.length} ${t("checks_fine")}`)),
      el("ul", { class: "plain" }, ...good.map(item))));
  $("#checks").replaceChildren(...bad.map(item), ...(good.length ? [fine] : []));
  const h = await api("GET", "/api/v1/checks/history");
  $("#check-history").replaceChildren(...h.history.slice(0, 30).map((e) => el("li", { class: `check ${e.status}` },
    el("span", { class: `dot ${e.status}` }, ""), ` ${localTime(e.at)} `,
    el("strong", {}, checkTitle(e.check)), ` ${said(e, "evidence")}`)));
}

$("#run-checks").addEventListener("click", () => loadChecks().catch((e) => showError(e.message)));

// ---- settings -------------------------------------------------------------

async function loadSettings() {
  const s = await api("GET", "/api/v1/settings");
  const form = $("#shop-form");
  form.store_name.value = s.store_name;
  form.address.value = s.address;
  form.slip_header.value = s.slip_header.join("\n");
  form.slip_footer.value = s.slip_footer.join("\n");
  form.supervisor_pin.value = "";
  form.cashier_sign_on.checked = s.cashier_sign_on;
  form.pairing_required.checked = s.pairing_required;
  form.managers_unfreeze.checked = s.managers_unfreeze;
  const zones = await api("GET", "/api/v1/time-zones");
  const names = zones.zones.includes(zones.current) ? zones.zones : [zones.current, ...zones.zones];
  form.time_zone.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  form.time_zone.value = zones.current;
  $("#pin-state").textContent = s.supervisor_pin_set ? t("pin_set") : t("pin_unset");
  const owner = session.role === "owner";
  for (const input of form.querySelectorAll("input, textarea, button")) input.disabled = !owner;
  const facts = [["merchant_id", s.merchant_id], ["currency", s.currency],
    ["public_url", s.public_url], ["hub_version", s.version]];
  $("#shop-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, v)]),
    el("dd", { class: "muted" }, owner ? t("settings_file") : t("owner_only")));
  await loadCashiers(owner);
  if (!owner) return;
  const a = await api("GET", "/api/v1/accounts");
  $("#managers").replaceChildren(...a.accounts.filter((x) => x.role === "manager").map((x) =>
    el("li", {}, `${x.name} `, el("button", { type: "button", class: "secondary", onclick: async () => {
      ask(`${x.name}${colon()}${t("ask_remove_manager")}`, t("yes_remove"),
        () => act("DELETE", `/api/v1/accounts/${encodeURIComponent(x.name)}`, undefined, loadSettings, `${x.name}${colon()}${t("done_removed")}`));
    } }, t("remove")))));
  table($("#logins"), [t("when"), t("account"), t("from_where"), t("result")],
    a.logins.map((l) => [localTime(l.at), l.account, l.ip, l.ok ? t("success") : t("failure")]));
  await loadAcquirerKeys();
  await loadCodeProviders();
  await loadOffsite();
  const u = await api("GET", "/api/v1/update");
  const last = u.history.length ? u.history[u.history.length - 1] : null;
  $("#update-state").textContent = u.installed
    ? `${t("hub_version")} ${u.installed}` + (last ? ` · ${localTime(last.at)} ${last.event} ${last.version}` : "")
    : t("update_none");
}

// The acquirer's master keys: shown by check value only; a key is entered
// from its two components, and the hub says whether the acquirer then
// accepted a sign-in under it.
async function loadAcquirerKeys() {
  const k = await api("GET", "/api/v1/acquirer-keys");
  const form = $("#acquirer-keys-form");
  form.hidden = !k.link;
  if (!k.link) return;
  table($("#acquirer-keys"), [t("acquirer_terminal"), t("nav_terminals"), t("check_value")],
    k.terminals.map((x) => [x.terminal, x.checkouts.join(", "), x.check_value || t("no_key")]));
  const chosen = form.terminal.value;
  form.terminal.replaceChildren(...k.terminals.map((x) => el("option", { value: x.terminal }, x.terminal)));
  if (chosen) form.terminal.value = chosen;
}

$("#acquirer-keys-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { component_1: f.component_1.value, check_value_1: f.check_value_1.value,
    component_2: f.component_2.value, check_value_2: f.check_value_2.value };
  const result = $("#acquirer-key-result");
  result.textContent = t("signing_in");
  try {
    const r = await api("PUT", `/api/v1/acquirer-keys/${encodeURIComponent(f.terminal.value)}`, body);
    for (const name of ["component_1", "check_value_1", "component_2", "check_value_2"]) f[name].value = "";
    result.textContent = `${r.terminal}${colon()}${t("check_value")} ${r.check_value} · ` +
      (r.signed_in ? t("key_signed_in") : `${t("key_not_signed_in")} ${r.sign_in_error}`);
    await loadAcquirerKeys();
  } catch (err) {
    result.textContent = "";
    showError(err.message);
  }
});

// The payment-code providers: how each is set up; credentials entered are
// checked with the provider before the hub keeps them, and never shown again.
async function loadCodeProviders() {
  const d = await api("GET", "/api/v1/code-providers");
  $("#code-provider-list").replaceChildren(...d.providers.map((p) => {
    const who = t(`provider_${p.provider}`);
    const how = p.source !== "page" ? t(`source_${p.source}`)
      : `${t("source_page")} (${p.id})${colon()}${p.check === "taken" ? t("creds_taken") : `${t("creds_not_checked")} ${p.why || ""}`}`;
    return el("li", { "data-provider": p.provider },
      el("strong", {}, `${who}${colon()}`), el("span", {}, how), p.checked_at ? el("span", { class: "muted" }, ` · ${localTime(p.checked_at)}`) : "",
      p.source === "page"
        ? el("button", { type: "button", class: "secondary", onclick: () => ask(`${who}${colon()}${t("ask_forget_creds")}`, t("yes_forget"),
          () => act("DELETE", `/api/v1/code-providers/${p.provider}`, undefined, loadCodeProviders, `${who}${colon()}${t("done_forgotten")}`)) }, t("forget"))
        : "");
  }));
}

// Puts a form of secrets (the fields filled in) to `url`; once the hub has
// kept them the form is emptied and folded. The hub's answer.
async function putSecrets(f, url) {
  const body = {};
  for (const field of f.querySelectorAll("input, textarea")) {
    if (field.value.trim()) body[field.name] = field.value;
  }
  const button = f.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const r = await api("PUT", url, body);
    f.reset();
    f.closest("details").open = false;
    return r;
  } finally {
    button.disabled = false;
  }
}

for (const form of document.querySelectorAll("form.credentials")) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await putSecrets(e.target, `/api/v1/code-providers/${e.target.dataset.provider}`);
      notice(`${t(`provider_${r.provider}`)}${colon()}${r.check === "taken" ? t("creds_taken") : `${t("creds_not_checked")} ${r.why || ""}`}`);
      await loadCodeProviders();
    } catch (err) {
      showError(err.message);
    }
  });
}

// The off-site bucket: where the copies go and how the last one went; a
// bucket entered here is checked with the store before the hub keeps it.
async function loadOffsite() {
  const d = await api("GET", "/api/v1/offsite");
  const o = d.offsite;
  const where = o.source === "none" ? t("offsite_none")
    : `${t(`source_${o.source}`)}${colon()}${o.url} (${o.access_key_id})`;
  const last = !d.last ? ""
    : d.last.error ? ` · ${t("offsite_failed")} ${localTime(d.last.at)}${colon()}${d.last.error}`
    : ` · ${t("offsite_last")} ${localTime(d.last.at)}`;
  $("#offsite-now").replaceChildren(el("span", {}, where + last),
    o.source === "page"
      ? el("button", { type: "button", class: "secondary", onclick: () => ask(t("ask_forget_offsite"), t("yes_forget"),
        () => act("DELETE", "/api/v1/offsite", undefined, loadOffsite, `${t("offsite_copy")}${colon()}${t("done_forgotten")}`)) }, t("forget"))
      : "");
  await loadBackups();
}

/** Words of `key` with its `{names}` filled in. */
function words(key, values) {
  return t(key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** When a backup was taken, from its name (`auto-YYYYMMDD-HHMMSS.db`, the
 * store's time): 2026-12-05 14:25:03. */
function backupTime(name) {
  const m = /auto-(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)/.exec(name);
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}` : name;
}

/** A backup to put back: its time, size if known, and the button. */
function backupItem(name, bytes, order) {
  const size = bytes === undefined ? "" : ` · ${(bytes / 1048576).toFixed(1)} MiB`;
  return el("li", {}, `${backupTime(name)}${size} `, el("button", { type: "button", class: "secondary",
    "data-restore": name, onclick: () => ask(words("ask_restore", { when: backupTime(name) }), t("yes_restore"), async () => {
      try {
        await api("POST", "/api/v1/restore", order);
        notice(t("restoring"));
        setTimeout(() => location.reload(), 20000);
      } catch (err) {
        showError(err.message);
      }
    }) }, t("restore_this")));
}

async function loadBackups() {
  const d = await api("GET", "/api/v1/backups");
  const r = d.last_restore;
  $("#restore-last").textContent = !r ? ""
    : r.error ? words("restore_failed", { by: r.by, when: localTime(r.done_at), why: r.error })
    : words("restored_last", { file: backupTime(r.file), when: localTime(r.done_at), by: r.by });
  $("#backup-list").replaceChildren(...(d.on_hub.length
    ? d.on_hub.map((b) => backupItem(b.name, b.bytes, { backup: b.name }))
    : [el("li", { class: "muted" }, t("no_backups_here"))]));
  $("#offsite-copies").replaceChildren();
  $("#offsite-copies-show").hidden = !d.offsite;
}

$("#offsite-copies-show").addEventListener("click", async () => {
  try {
    const d = await api("GET", "/api/v1/offsite/copies");
    $("#offsite-copies").replaceChildren(...(d.copies.length
      ? d.copies.map((name) => backupItem(name, undefined, { offsite: name }))
      : [el("li", { class: "muted" }, t("offsite_copies_none"))]));
  } catch (err) {
    showError(err.message);
  }
});

$("#offsite-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const r = await putSecrets(e.target, "/api/v1/offsite");
    notice(`${t("offsite_copy")}${colon()}${r.check === "taken" ? t("offsite_taken") : `${t("creds_not_checked")} ${r.why || ""}`}`);
    await loadOffsite();
  } catch (err) {
    showError(err.message);
  }
});

// An update: the bundle goes up as it is; the hub checks it, installs it and
// restarts into it (the page comes back by itself).
$("#update-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = e.target.bundle.files[0];
  if (!file) return;
  const res = await fetch("/api/v1/update", { method: "POST", credentials: "same-origin", body: file,
    headers: { "Content-Type": "application/octet-stream", Accept: "application/json", "X-CSRF-Token": session.csrf } });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) return showError(errorText(data.error || { code: `HTTP ${res.status}` }));
  notice(`${data.version} ${t("update_installed")}`);
  setTimeout(() => location.reload(), 15000);
});

$("#shop-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const lines = (text) => text.split("\n").map((l) => l.trim()).filter((l) => l);
  const body = { store_name: f.store_name.value, address: f.address.value,
    slip_header: lines(f.slip_header.value), slip_footer: lines(f.slip_footer.value) };
  if (f.supervisor_pin.value) body.supervisor_pin = f.supervisor_pin.value;
  body.cashier_sign_on = f.cashier_sign_on.checked;
  body.time_zone = f.time_zone.value;
  body.pairing_required = f.pairing_required.checked;
  body.managers_unfreeze = f.managers_unfreeze.checked;
  act("PUT", "/api/v1/settings", body, loadSettings);
});

function cashierItem(c, owner) {
  const url = `/api/v1/cashiers/${c.no}`;
  const facts = [];
  if (c.signed_on_at.length) facts.push(`${t("signed_on_at")} ${c.signed_on_at.join(", ")}`);
  if (c.failures && !c.locked_at) facts.push(`${c.failures} ${t("wrong_pins")}`);
  return el("li", { class: "cashier", "data-no": c.no },
    el("strong", {}, `${c.no} ${c.name}`),
    el("span", { class: "muted" }, facts.length ? ` · ${facts.join(" · ")}` : ""),
    c.locked_at ? el("span", { class: "status declined" }, ` ${t("locked")} `) : "",
    owner && c.locked_at
      ? el("button", { type: "button", onclick: () => act("POST", `${url}/unlock`, undefined, loadSettings) }, t("unlock"))
      : "",
    owner
      ? el("button", { type: "button", class: "secondary", onclick: () => ask(`${c.no} ${c.name}${colon()}${t("ask_remove_cashier")}`, t("yes_remove"),
        () => act("DELETE", url, undefined, loadSettings, `${c.no} ${c.name}${colon()}${t("done_removed")}`)) }, t("remove"))
      : "");
}

async function loadCashiers(owner) {
  const d = await api("GET", "/api/v1/cashiers");
  $("#cashiers").replaceChildren(...d.cashiers.map((c) => cashierItem(c, owner)));
  $("#cashier-form .owner-controls").hidden = !owner;
}

$("#cashier-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = { name: f.get("name") };
  if (f.get("pin")) body.pin = f.get("pin");
  const url = `/api/v1/cashiers/${encodeURIComponent(f.get("no"))}`;
  if (await act("PUT", url, body, loadSettings)) e.target.reset();
});

$("#password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    await api("PUT", "/api/v1/password", { current: f.get("current"), new: f.get("new") });
    e.target.reset();
    session = null;
    signedOut("unauthorized");
    notice(t("password_changed"));
  } catch (err) {
    showError(err.message);
  }
});

$("#manager-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const url = `/api/v1/accounts/${encodeURIComponent(f.get("name"))}`;
  if (await act("PUT", url, { password: f.get("password") }, loadSettings)) e.target.reset();
});

// ---- routing --------------------------------------------------------------

const LOADERS = {
  today: loadToday,
  list: () => Promise.all([loadReceipts(true), loadTerminalChoices()]),
  reports: loadReport,
  terminals: loadTerminals,
  settings: loadSettings,
  troubleshooting: loadChecks,
};

function route() {
  if (!session) return;
  const hash = location.hash;
  const receipt = hash.match(/^#\/receipt\/(\d+)$/);
  let view = "list";
  let load;
  if (receipt) {
    view = "detail";
    load = () => loadReceipt(receipt[1]);
  } else {
    view = { "#/today": "today", "#/reports": "reports", "#/terminals": "terminals",
      "#/troubleshooting": "troubleshooting", "#/settings": "settings" }[hash] || "list";
    load = LOADERS[view];
  }
  show(view);
  applyWords();
  const section = $(`#${view}-view`);
  section.classList.add("loading");
  const seq = errorSeq;
  load().then(() => { if (errorSeq === seq) showError(""); }).catch((e) => showError(e.message))
    .finally(() => section.classList.remove("loading"));
}

// Something changed in the store: fetch again what this view shows (a
// receipts list only while its first page is all that is showing).
function refresh() {
  if (!session) return;
  const again = { today: loadToday, terminals: loadTerminals, reports: loadReport, troubleshooting: loadChecks }[current];
  if (again) again().catch((e) => showError(e.message));
  if (current === "list" && pagesShown <= 1) refreshReceipts().catch((e) => showError(e.message));
}

// Heartbeats change the store too: reload the list only when its top changed.
async function refreshReceipts() {
  const params = filterQuery();
  params.set("limit", "1");
  const page = await api("GET", `/api/v1/transactions?${params}`);
  const top = page.items[0];
  if ((top ? `${top.id}/${top.updated_at}` : "") !== newestSeen) await loadReceipts(true);
}

window.addEventListener("hashchange", route);
// Where the browser allows one (HTTPS, or localhost), a service worker keeps
// the last of each read for when the hub is out of reach.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
  // The first time it takes the page, the sign-in was read before it: read
  // it again so that it is kept too.
  navigator.serviceWorker.addEventListener("controllerchange", keepSession);
}
boot();
