// Field kit pages: copy, share and print buttons (the plain text to copy is in #share-text), and the
// question filter of the topic index. No inline script (the pages send a strict CSP); without JavaScript
// the buttons and the filter stay hidden and the pages still work.
"use strict";

// Vietnamese without diacritics, lower case: "Rút BHXH một lần" and "rut bhxh mot lan" match.
const fold = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "")
  .replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();

(() => {
  const input = document.getElementById("filter");
  if (!input) return;
  const status = document.getElementById("filter-count");
  const topics = [...document.querySelectorAll("section.topic")].map((section) => ({
    section,
    items: [...section.querySelectorAll(".questions li")].map((li) => ({ li, text: fold(li.textContent) })),
  }));
  const total = topics.reduce((n, t) => n + t.items.length, 0);
  const apply = () => {
    const words = fold(input.value).split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const topic of topics) {
      let inTopic = 0;
      for (const item of topic.items) {
        const match = words.every((w) => item.text.includes(w));
        item.li.hidden = !match;
        if (match) inTopic += 1;
      }
      topic.section.hidden = words.length > 0 && inTopic === 0;
      shown += inTopic;
    }
    status.textContent = words.length ? `${shown} trên ${total} câu hỏi có các chữ này.` : "";
  };
  input.addEventListener("input", apply);
  input.closest(".filter").hidden = false;
})();

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
