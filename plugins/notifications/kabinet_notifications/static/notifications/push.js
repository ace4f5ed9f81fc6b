// The subscribe button on "My notifications": registers the service worker, subscribes
// with the portal's VAPID key and hands the subscription to the portal.
(function () {
  const button = document.getElementById("push-subscribe");
  if (!button) return;
  const status = document.getElementById("push-status");
  const say = (text) => { if (status) status.textContent = text; };
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const key = button.dataset.vapidKey || "";
  function decode(b64) {
    const pad = "=".repeat((4 - (b64.length % 4)) % 4);
    const raw = atob((b64 + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }
  if (!("serviceWorker" in navigator)) { button.disabled = true; say(button.dataset.unsupported || ""); return; }
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const reg = await navigator.serviceWorker.register("/notifications/sw.js", { scope: "/notifications/" });
      document.body.dataset.swRegistered = "1";
      say(button.dataset.registered || "");
      if (!("PushManager" in window) || !key) { button.disabled = false; return; }
      const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: decode(key) });
      const res = await fetch("/api/notifications/push/subscriptions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(sub.toJSON()),
      });
      say(res.ok ? (button.dataset.done || "") : (button.dataset.failed || ""));
    } catch (e) {
      say((button.dataset.failed || "") + " " + (e && e.message ? e.message : ""));
    }
    button.disabled = false;
  });
})();
