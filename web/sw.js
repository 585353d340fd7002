// The page's service worker: when the hub cannot be reached, the page still
// opens and shows what it last read, marked with when it was read.
//
// Everything goes to the hub first. A page file or an API read that the hub
// answers is kept (the newest copy of each address); when the hub does not
// answer, the kept copy is given instead, with the header
// `x-tallybox-saved-at` saying when it was read, and the page says the hub
// is out of reach and how old what it shows is. Nothing that changes
// anything is ever answered from here, nor the live feed, downloads or
// the hub's health. Signing out empties the copies.
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

/** Whether a read of `url` may be answered from a kept copy. */
function keepable(url) {
  if (url.origin !== self.location.origin) return false;
  if (SHELL.includes(url.pathname)) return true;
  return url.pathname.startsWith("/api/v1/")
    && !url.pathname.startsWith("/api/v1/events")
    && !/\.(csv|db|zip|tar|gz)$/.test(url.pathname)
    && !url.pathname.includes("/evidence")
    && !url.pathname.includes("/backup");
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
