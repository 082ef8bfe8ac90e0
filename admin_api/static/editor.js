// Entry editor: the preview follows the form as it is typed (the page works without this: "Xem trước").
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
  const form = document.getElementById("entry-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let sent = 0;
  const refresh = async () => {
    const ticket = ++sent;
    const body = new URLSearchParams(new FormData(form));
    body.set("action", "live");
    let data;
    try {
      const response = await fetch(form.getAttribute("action"), {  // form.action is the button named "action"
        method: "POST", body, credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      });
      data = await response.json();
    } catch (error) {
      return; // offline for a moment: the next keystroke tries again
    }
    if (ticket !== sent) return; // an older answer arriving late
    const problems = $("preview-problems");
    problems.replaceChildren();
    if (!data.ok) {
      (data.problems || [data.detail]).forEach((text) => {
        const line = document.createElement("div");
        line.textContent = text;
        problems.append(line);
      });
    }
    problems.hidden = Boolean(data.ok);
    $("preview-bubble").hidden = !data.ok;
    if (data.ok) {
      $("preview-title").textContent = data.title;
      $("preview-short").textContent = data.short;
      $("preview-details").textContent = data.short ? data.details : data.text;
      $("preview-sources").textContent = "Nguồn: " + data.sources.join("; ");
      const [y, m, d] = data.on.split("-");
      $("preview-day").textContent = `ngày ${d}/${m}/${y}`;
    }
    form.dataset.previewed = String(ticket);
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  });
});
