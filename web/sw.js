// The page's service worker: when the hub cannot be reached, the page still
// opens and shows what it last read, marked with when it was read.
//
// Everything goes to the hub first. A page file or an API read that the hub
// answers is kept (the newest copy of each address); when the hub does not
// answer, the kept copy is given instead, with the header
// `x-tallybox-saved-at` saying when it was read, and the page says the hub
// is out of reach and how old what it shows is. Only the reads the page
// shows are kept (`READS`); nothing that changes anything, nor the live
// feed, downloads, pairing codes or the hub's health. Signing out empties
// the copies.
//
// Browsers run a service worker only on a secure origin: HTTPS, or the
// hub's own screen at localhost.

const KEPT = "tallybox-kept-v1";
const SHELL = ["/", "/app.js", "/i18n.js", "/style.css", "/manifest.webmanifest", "/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(KEPT).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== KEPT).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// The reads the page shows, and only those: downloads (the CSV, backups,
// evidence, the support bundle), pairing codes and keys stay off the phone.
const READS = /^\/api\/v1\/(session|settings|today|reports|code-bills|terminals|checks(\/history)?|fraud|freezes|cashiers|accounts|orders\/[\w-]+|time-zones|transactions(\/\d+)?)$/;

/** Whether a read of `url` may be answered from a kept copy. */
function keepable(url) {
  return url.origin === self.location.origin && (SHELL.includes(url.pathname) || READS.test(url.pathname));
}

async function kept(request) {
  const cache = await caches.open(KEPT);
  // The page's own address is kept as "/", whatever follows the "#".
  const copy = await cache.match(request, { ignoreVary: true })
    || (request.mode === "navigate" ? await cache.match("/") : undefined);
  return copy || Response.error();
}

async function fetchAndKeep(request) {
  let answer;
  try {
    answer = await fetch(request);
  } catch {
    return kept(request);
  }
  if (answer.ok && answer.status === 200) {
    const headers = new Headers(answer.headers);
    headers.set("x-tallybox-saved-at", new Date().toISOString());
    // The body kept is the unpacked one.
    headers.delete("content-encoding");
    headers.delete("content-length");
    const body = await answer.clone().arrayBuffer();
    const copy = new Response(body, { status: 200, statusText: answer.statusText, headers });
    const cache = await caches.open(KEPT);
    await cache.put(request.mode === "navigate" ? "/" : request, copy);
  } else if (answer.status === 401) {
    // Signed out at the hub: nothing of the shop stays on the phone.
    await caches.delete(KEPT);
  }
  return answer;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || !keepable(url)) return;
  event.respondWith(fetchAndKeep(request));
});
