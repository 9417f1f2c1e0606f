/* The project admin's "Preview" of the guidelines: posts the textarea's text to the admin's preview endpoint, which
 * answers it rendered and sanitised exactly as the rate page renders it, and shows that under the button.
 * A static file because the Content-Security-Policy allows no inline script (config/security.py).
 */
(function () {
  "use strict";

  function setUp() {
    const button = document.getElementById("guidelines-preview-button");
    const box = document.getElementById("guidelines-preview");
    const source = document.getElementById("id_guidelines");
    if (!button || !box || !source) return;
    const tokenInput = document.querySelector("input[name=csrfmiddlewaretoken]");

    function show(kind, text) {
      box.hidden = false;
      box.classList.toggle("is-error", kind === "error");
      box.textContent = text;
    }

    button.addEventListener("click", () => {
      const body = new FormData();
      body.append("text", source.value);
      button.disabled = true;
      show("info", "Rendering…");
      fetch(button.dataset.url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": tokenInput ? tokenInput.value : "" },
      })
        .then((response) => response.json().then((data) => ({ ok: response.ok, data: data })))
        .then(({ ok, data }) => {
          if (!ok) {
            show("error", "Not rendered: " + ((data.text || [data.detail || "error"]).join(" ")));
            return;
          }
          box.hidden = false;
          box.classList.remove("is-error");
          // The server sanitised it (annotation.markdown, the rate page's own renderer): no script, no javascript: link.
          box.innerHTML = data.html || "<p>(empty)</p>";
        })
        .catch(() => show("error", "The preview could not be fetched; try again."))
        .finally(() => {
          button.disabled = false;
        });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
