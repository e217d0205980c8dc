// Placeholder web manager: shows the daemon's health through the API.
"use strict";
(async () => {
  const status = document.getElementById("status");
  const token = sessionStorage.getItem("secsip-token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  try {
    const r = await fetch("/api/health", { headers });
    const h = await r.json();
    status.textContent = r.ok
      ? `secsip ${h.version}, pid ${h.pid}, up ${Math.round(h.uptime_s)} s. The web manager is loading…`
      : `API: ${h.error ? h.error.message : r.status}`;
  } catch (e) {
    status.textContent = "The API does not answer: " + e;
  }
})();
