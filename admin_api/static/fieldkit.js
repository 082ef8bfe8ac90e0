// Field kit pages: copy, share and print buttons (the plain text to copy is in #share-text).
// No inline script (the pages send a strict CSP); without JavaScript the buttons stay hidden.
"use strict";

(() => {
  const bar = document.querySelector(".actions");
  const source = document.getElementById("share-text");
  if (!bar || !source) return;
  const status = bar.querySelector(".status");
  const text = source.textContent.trim();
  const say = (message) => { if (status) status.textContent = message; };

  const copyFallback = () => {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    area.remove();
    return ok;
  };

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      say("Đã sao chép, bạn dán vào Zalo hoặc tin nhắn.");
    } catch (_) {
      say(copyFallback() ? "Đã sao chép." : "Không sao chép được; bạn chọn chữ rồi sao chép.");
    }
  };

  const share = async () => {
    try {
      await navigator.share({ title: document.title, text });
    } catch (_) {
      // The person closed the share sheet: nothing to say.
    }
  };

  bar.querySelector('[data-action="copy"]').addEventListener("click", copy);
  bar.querySelector('[data-action="print"]').addEventListener("click", () => window.print());
  const shareButton = bar.querySelector('[data-action="share"]');
  if (navigator.share) {
    shareButton.hidden = false;
    shareButton.addEventListener("click", share);
  }
  bar.hidden = false;
})();
