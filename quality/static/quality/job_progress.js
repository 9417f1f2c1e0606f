// Live progress panels of the admin's run controls (train now, selection round, quality refresh).
//
// Each .job-progress element names the JSON endpoint to poll (data-poll-url, an /api/ GET answering status,
// progress 0-1 and a stage or message) and where its result is shown (data-result-url). While its status is not
// final it polls every 2 s with fetch() (the session's cookie authenticates it), updates the bar and the text, and
// stops at a final status with a link to the result. A file, not an inline script: the Content-Security-Policy
// (config/security.py) allows scripts from 'self' only. Text from the server goes in with textContent, never as HTML.
(function () {
  "use strict";
  const FINAL = ["done", "succeeded", "failed", "skipped", "never"];
  const POLL_MS = 2000;

  function show(panel, body) {
    const bar = panel.querySelector("progress");
    const status = panel.querySelector(".job-status");
    const stage = panel.querySelector(".job-stage");
    const progress = Math.max(0, Math.min(1, Number(body.progress) || 0));
    bar.value = progress;
    status.textContent = body.status + " " + Math.round(progress * 100) + "%";
    stage.textContent = body.status === "failed" ? (body.error || body.message || "") : (body.stage || body.message || "");
    panel.dataset.status = body.status;
  }

  function finish(panel, body) {
    const link = panel.querySelector(".job-result");
    panel.dataset.state = body.status === "failed" ? "failed" : "done";
    if (link && panel.dataset.resultUrl && body.status !== "never") {
      link.href = panel.dataset.resultUrl;
      link.hidden = false;
    }
  }

  function watch(panel) {
    async function poll() {
      let body;
      try {
        const response = await fetch(panel.dataset.pollUrl, {credentials: "same-origin",
                                                             headers: {"Accept": "application/json"}});
        if (!response.ok) throw new Error("HTTP " + response.status);
        body = await response.json();
      } catch (error) {
        panel.querySelector(".job-stage").textContent = "could not read the progress (" + error.message +
          "); trying again";
        window.setTimeout(poll, POLL_MS);
        return;
      }
      show(panel, body);
      if (FINAL.includes(body.status)) finish(panel, body);
      else window.setTimeout(poll, POLL_MS);
    }
    panel.dataset.state = "polling";
    poll();
  }

  function start() {
    document.querySelectorAll(".job-progress[data-poll-url]").forEach(function (panel) {
      if (FINAL.includes(panel.dataset.status)) finish(panel, {status: panel.dataset.status});
      else watch(panel);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
