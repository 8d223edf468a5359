// deskhook console: the little the pages need from a browser. No framework, no network.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms and buttons with data-confirm ask before they submit.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    const message =
      (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // "Generate" fills the named input with a new whsec_ secret (24 random bytes), made here
  // in the browser so that the server never holds a secret it would have to show.
  for (const button of document.querySelectorAll("[data-generate-secret]")) {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.generateSecret);
      const bytes = new Uint8Array(24);
      window.crypto.getRandomValues(bytes);
      input.value = "whsec_" + btoa(String.fromCharCode(...bytes));
      input.select();
    });
  }

  // A header check box selects or clears every box of its name.
  for (const all of document.querySelectorAll("[data-select-all]")) {
    all.addEventListener("change", () => {
      const name = all.dataset.selectAll;
      for (const box of document.querySelectorAll(`input[type=checkbox][name="${name}"]`)) {
        box.checked = all.checked;
      }
    });
  }
});
