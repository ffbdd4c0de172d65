// The service worker: keeps the client's shell (HTML, CSS, modules, icons) so the app
// opens and installs as a PWA. API calls, media and the gateway are never cached.

const CACHE = "drocsid-shell-v1";
const SHELL = ["/", "/app.css", "/settings.css", "/gif.css", "/js/main.js", "/manifest.webmanifest", "/icons/icon.svg", "/icons/icon-192.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

function isShell(url) {
  return url.origin === self.location.origin &&
    (url.pathname === "/app.css" || url.pathname.startsWith("/js/") || url.pathname.startsWith("/icons/") ||
     url.pathname === "/manifest.webmanifest");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate") {
    // Network first, so an upgraded server serves its new client; the cached shell offline.
    event.respondWith(fetch(request).then((response) => {
      const copy = response.clone();
      if (response.ok) caches.open(CACHE).then((cache) => cache.put("/", copy));
      return response;
    }).catch(() => caches.match("/")));
    return;
  }
  if (!isShell(url)) return;
  // Stale while revalidate: the cached file at once, a fresh copy for next time.
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const cached = await cache.match(request);
    const fresh = fetch(request).then((response) => {
      if (response.ok) cache.put(request, response.clone());
      return response;
    });
    return cached || fresh;
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = event.notification.data?.url || "/";
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if ("focus" in client) {
        client.postMessage({ type: "navigate", url: target });
        return client.focus();
      }
    }
    return self.clients.openWindow(target);
  })());
});
