// The service worker: offline after the first visit. The build puts VERSION and PRECACHE (site
// path -> content hash) above this line; a new build is a new cache, the old one is deleted.
/* global VERSION, PRECACHE */

const CACHE = `edgedigits-${VERSION}`;
const scope = new URL(self.registration.scope);
const urls = ["./", ...Object.keys(PRECACHE)].map((rel) => new URL(rel, scope).href);

self.addEventListener("install", (event) => {
  // the page loaded these moments ago: the HTTP cache revalidates them (304s, no bodies)
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(urls)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("edgedigits-") && n !== CACHE)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || !request.url.startsWith(scope.origin)) return;
  const url = new URL(request.url);
  url.search = "";
  url.hash = "";
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(url.href))
    .then((hit) => hit || fetch(request)));
});
