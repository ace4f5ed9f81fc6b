// Kabinet web push: show what the portal sent, open the portal on a click. A push carries
// its delivery as its tag: the same delivery pushed twice replaces itself, silently.
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : "" }; }
  event.waitUntil(self.registration.showNotification(data.title || "Kabinet", {
    body: data.body || "",
    tag: data.tag || undefined,
    data: { url: data.url || "/" },
  }));
});
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url || "/"));
});
