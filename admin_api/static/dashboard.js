// Staff dashboard: small conveniences only; the page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // Changing a filter reloads the page with it.
  document.querySelectorAll(".filters select").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  // Staff edits take effect at once: ask before attaching a question to an entry.
  document.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
});
