// The periodic-task admin page's crontab translation (django-celery-beat's inline script, as a file for the CSP).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const data = document.getElementById("readable-crontabs");
  const help = document.getElementById("crontab-help");
  const select = document.getElementById("id_crontab");
  if (!data || !select) return;
  const readable = JSON.parse(data.textContent);
  const original = help ? JSON.parse(help.textContent) : "";
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) translation.hidden = true;
  function show() {
    const box = document.querySelector(".field-crontab .help");
    if (!box) return;
    box.textContent = original;
    const meaning = readable[select.value];
    if (meaning) {
      box.appendChild(document.createElement("br"));
      box.appendChild(document.createTextNode("Translation: " + meaning));
    }
  }
  select.addEventListener("change", show);
  show();
});
