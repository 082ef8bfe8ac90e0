// Web chat of Trợ lý BHXH. Every text from the server is shown with textContent (never innerHTML).
"use strict";

(() => {
  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("q");
  const send = document.getElementById("send");
  const BUSY_TEXT = "Đang tìm câu trả lời…";
  // The last button of every choice list (bot/messages.py NONE_OF_THESE, bot/conversation.py NONE_OF_THESE_ID).
  const NONE_OF_THESE = { entry_id: "khong-phai-cac-cau-tren", question: "Không phải các câu trên" };
  const FAIL_TEXT = "Không kết nối được máy chủ. Bạn kiểm tra mạng rồi thử lại nhé.";
  const userId = visitorId();

  function visitorId() {
    const fresh = "web-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
    try {
      const saved = localStorage.getItem("bhxh-chat-user");
      if (saved) return saved;
      localStorage.setItem("bhxh-chat-user", fresh);
    } catch (e) { /* private mode: one id per page load */ }
    return fresh;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  // A new answer is read from its start: the reader lands on its first line, not on its sources and
  // feedback buttons (a short one still ends at the bottom: scrollTop stops at its maximum).
  function scrollToStart(section) {
    const offset = section.getBoundingClientRect().top - log.getBoundingClientRect().top;
    log.scrollTop += offset - 8;
  }

  function bubble(role, extra) {
    const section = el("section", "msg " + role + (extra ? " " + extra : ""));
    const box = el("div", "bubble");
    section.appendChild(box);
    log.appendChild(section);
    scrollDown();
    return box;
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      throw new Error(FAIL_TEXT);
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail
        : "Xin lỗi, hệ thống đang bận. Bạn thử lại sau ít phút nhé.";
      throw new Error(detail);
    }
    return data;
  }

  // The answer text without the "Căn cứ" line and numbered choices: those are drawn separately.
  function paragraphs(data) {
    const sources = data.sources && data.sources.length ? "Căn cứ: " + data.sources.join("; ") + "." : null;
    const choices = (data.choices || []).map((c, i) => (i + 1) + ". " + c.question).join("\n");
    return String(data.answer || "").split("\n\n").filter((p) => p && p !== sources && !(choices && p === choices));
  }

  function buttonList(box, label, items, className, numbered) {
    box.appendChild(el("p", "label", label));
    const list = el("div", className === "choice" ? "choices" : "related");
    if (className === "choice") items = items.concat([NONE_OF_THESE]);
    const buttons = items.map((item, i) => {
      const none = item === NONE_OF_THESE;
      const b = el("button", none ? "choice-none" : className, (numbered && !none ? (i + 1) + ". " : "") + item.question);
      b.type = "button";
      b.dataset.entry = item.entry_id;
      b.addEventListener("click", () => {
        if (className === "choice") {
          buttons.forEach((x) => { x.disabled = true; });
          b.classList.add("picked");
        }
        choose(item);
      });
      list.appendChild(b);
      return b;
    });
    box.appendChild(list);
  }

  // After a 👎: the bot offers a person (bot/handoff.py); the button asks as if typed.
  function offerPerson(text) {
    const box = bubble("bot", "offer");
    box.appendChild(el("p", "text", text));
    box.appendChild(personButton());
  }

  function personButton() {
    const b = el("button", "rel person", "🙋 Hỏi cán bộ");
    b.type = "button";
    b.addEventListener("click", () => { b.disabled = true; ask("gặp cán bộ"); });
    return b;
  }

  const DOWN_REASONS = ["Không đúng câu tôi hỏi", "Thông tin chưa đúng", "Khó hiểu", "Thiếu thông tin"];

  function askReason(row, data) {
    row.replaceChildren(el("span", null, "Cảm ơn bạn! Câu trả lời chưa đúng ở điểm nào? (không bắt buộc)"));
    DOWN_REASONS.forEach((reason) => {
      const b = el("button", "vote reason", reason);
      b.type = "button";
      b.addEventListener("click", async () => {
        row.querySelectorAll("button").forEach((x) => { x.disabled = true; });
        try {
          await post("/api/feedback",
                     { question_id: data.question_id, entry_id: data.entry_id, value: -1, reason, user_id: userId });
        } catch (e) { /* the 👎 itself is recorded already */ }
        row.replaceChildren(el("span", "thanks", "Cảm ơn bạn đã góp ý!"));
      });
      row.appendChild(b);
    });
  }

  function feedbackRow(box, data) {
    const row = el("div", "feedback");
    row.appendChild(el("span", null, "Câu trả lời có hữu ích không?"));
    const vote = async (value) => {
      row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      try {
        const result = await post("/api/feedback",
                                  { question_id: data.question_id, entry_id: data.entry_id, value, user_id: userId });
        if (value < 0) askReason(row, data);  // optional: what was wrong, for the staff review queue
        else row.replaceChildren(el("span", "thanks", "Cảm ơn bạn đã góp ý!"));
        if (result && result.offer) offerPerson(result.offer);
      } catch (e) {
        row.replaceChildren(el("span", null, e.message));
      }
    };
    [["👍", 1, "Hữu ích"], ["👎", -1, "Chưa đúng"]].forEach(([icon, value, label]) => {
      const b = el("button", "vote", icon + " " + label);
      b.type = "button";
      b.addEventListener("click", () => vote(value));
      row.appendChild(b);
    });
    box.appendChild(row);
  }

  // The cited articles, folded under "Căn cứ" (they took half a phone screen unfolded).
  function sourcesBlock(sources) {
    const src = el("details", "sources");
    src.appendChild(el("summary", null, "Căn cứ (" + sources.length + ")"));
    const ul = el("ul");
    sources.forEach((s) => ul.appendChild(el("li", null, s)));
    src.appendChild(ul);
    return src;
  }

  // The notes above an answer, one line each ("Tiếp câu trước, tôi hiểu bạn hỏi: …" and "Số liệu tính theo
  // quy định áp dụng ngày …" come as lines of one notice): a paragraph of its own per line.
  function noticeBlock(box, notice) {
    const block = el("div", "notice");
    String(notice).split("\n").filter((line) => line.trim()).forEach((line) => block.appendChild(el("p", null, line)));
    box.appendChild(block);
  }

  function textParagraphs(box, text) {
    String(text).split("\n\n").filter((p) => p).forEach((p) => box.appendChild(el("p", "text", p)));
  }

  function render(data) {
    const box = bubble("bot");
    if (data.short) {
      // Short answer first; the rest behind "Xem chi tiết" (issue 17 item 2).
      if (data.notice) noticeBlock(box, data.notice);
      const lead = el("div", "short");
      textParagraphs(lead, data.short);
      box.appendChild(lead);
      if (data.details) {
        const more = el("details", "more");
        more.appendChild(el("summary", null, "Xem chi tiết"));
        textParagraphs(more, data.details);
        box.appendChild(more);
      }
    } else {
      if (data.notice) noticeBlock(box, data.notice);
      paragraphs(data).filter((p) => p !== data.notice).forEach((p) => box.appendChild(el("p", "text", p)));
    }
    if (data.sources && data.sources.length) box.appendChild(sourcesBlock(data.sources));
    if (data.choices && data.choices.length) buttonList(box, "Chọn câu hỏi phù hợp:", data.choices, "choice", true);
    if (data.related && data.related.length) buttonList(box, "Có thể bạn muốn hỏi:", data.related, "rel", false);
    if (data.answered && data.entry_id) feedbackRow(box, data);
    if (data.kind === "not_sure") box.appendChild(personButton());  // where the bot cannot help, a person may
    scrollToStart(box.parentElement);
  }

  async function exchange(userText, request) {
    bubble("user").appendChild(el("p", "text", userText));
    const typing = bubble("bot", "typing");
    typing.textContent = BUSY_TEXT;
    send.disabled = true;
    const stopTyping = () => { if (typing.isConnected) typing.parentElement.remove(); };
    try {
      const data = await request();
      stopTyping();  // before the answer is drawn, so its scroll position holds
      if (data.answer !== "") {  // "": a staff member has this chat (bot/handoff.py)
        render(data);
        lastAnswer = data.answer;  // the last one shown (a handoff's acknowledgement is not shown twice)
      }
      watchHandoff();
    } catch (e) {
      stopTyping();
      bubble("bot", "error").appendChild(el("p", "text", e.message || FAIL_TEXT));
    } finally {
      send.disabled = false;
    }
  }

  function ask(question) {
    return exchange(question, () => post("/api/ask", { question, user_id: userId }));
  }

  function choose(item) {
    const url = "/api/choose/" + encodeURIComponent(item.entry_id) + "?user_id=" + encodeURIComponent(userId);
    return exchange(item.question, () => post(url));
  }

  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    grow();
    ask(question);
  });

  input.addEventListener("input", grow);
  input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a new line; never while a Vietnamese IME is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // The voluntary-contribution calculator form ("Máy tính").
  const calc = document.getElementById("calc");
  const calcToggle = document.getElementById("calc-toggle");
  const calcSend = document.getElementById("calc-send");

  function money(n) { return Number(n).toLocaleString("vi-VN").replace(/,/g, ".") + " đồng"; }

  function amount(text) {
    const t = String(text).toLowerCase().replace(/\s+/g, "");
    const m = t.match(/^(\d+(?:[.,]\d+)?)(triệu|trieu|tr)$/);
    if (m) return Math.round(parseFloat(m[1].replace(",", ".")) * 1000000);
    const digits = t.replace(/[.,]|đồng|dong|đ$/g, "");
    return /^\d+$/.test(digits) ? Number(digits) : NaN;
  }

  function renderCalc(data) {
    const box = bubble("bot", "calc-result");
    box.appendChild(el("p", "text", "Thu nhập " + money(data.income) + "/tháng, nhóm " + data.group_label + ":"));
    const ul = el("ul", "figures");
    ul.appendChild(el("li", null, "Phải đóng: " + money(data.contribution_per_month) + "/tháng"));
    ul.appendChild(el("li", null, "Nhà nước hỗ trợ: " + money(data.support_per_month) + "/tháng"));
    ul.appendChild(el("li", null, "Bạn thực đóng: " + money(data.net_per_month) + "/tháng"));
    if (data.months > 1) {
      ul.appendChild(el("li", null, "Mỗi kỳ " + data.months + " tháng: " + money(data.net_per_period)));
    }
    box.appendChild(ul);
    box.appendChild(el("p", "label", "Cách tính:"));
    const steps = el("ol", "steps");
    (data.steps || []).forEach((s) => steps.appendChild(el("li", null, s)));
    box.appendChild(steps);
    if (data.sources && data.sources.length) {
      const src = el("div", "sources");
      src.appendChild(el("strong", null, "Căn cứ pháp lý"));
      const list = el("ul");
      data.sources.forEach((s) => list.appendChild(el("li", null, s)));
      src.appendChild(list);
      box.appendChild(src);
    }
    scrollDown();
  }

  calcToggle.addEventListener("click", () => {
    calc.hidden = !calc.hidden;
    calcToggle.setAttribute("aria-expanded", String(!calc.hidden));
    if (!calc.hidden) document.getElementById("calc-income").focus();
  });

  calc.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (calcSend.disabled) return;
    const raw = calc.elements.income.value.trim();
    const income = amount(raw);
    const groupText = calc.elements.group.selectedOptions[0].textContent;
    const monthsText = calc.elements.months.selectedOptions[0].textContent;
    bubble("user").appendChild(el("p", "text", "Tính tiền đóng: " + raw + ", " + groupText + ", " + monthsText));
    if (!Number.isFinite(income)) {
      bubble("bot", "error").appendChild(el("p", "text", "Bạn nhập thu nhập bằng số, ví dụ 2.000.000 hoặc 2 triệu."));
      return;
    }
    const body = { income, group: calc.elements.group.value, months: Number(calc.elements.months.value) };
    if (calc.elements.on.value) body.on = calc.elements.on.value;
    calcSend.disabled = true;
    try {
      const data = await post("/api/calc/voluntary", body);
      calc.hidden = true;  // the result needs the room on a phone; "Máy tính" opens the form again
      calcToggle.setAttribute("aria-expanded", "false");
      renderCalc(data);
    } catch (e) {
      bubble("bot", "error").appendChild(el("p", "text", e.message || FAIL_TEXT));
    } finally {
      calcSend.disabled = false;
    }
  });

  // A chat handed to a staff member ("gặp cán bộ", bot/handoff.py): their replies are fetched from
  // /api/handoff every HANDOFF_POLL_MS while the handoff is open, and shown like the bot's, signed.
  const HANDOFF_POLL_MS = 5000;
  let lastAnswer = null;  // the acknowledgement came as the answer itself: not shown twice
  let handoffSeen = 0;  // the last handoff message shown
  let handoffOpen = false;
  let handoffTimer = null;
  let handoffFailures = 0;  // polls in a row that got no answer

  async function watchHandoff() {
    if (handoffTimer !== null) return;
    let data;
    try {
      const url = "/api/handoff?user_id=" + encodeURIComponent(userId) + "&after=" + handoffSeen;
      const response = await fetch(url);
      data = response.ok ? await response.json() : undefined;
    } catch (e) {
      data = undefined;
    }
    if (data === undefined) {  // too many requests from this address (429), server or network down: ask again,
      // less and less often (5 s, 10 s, 20 s … 60 s); with no handoff known to be open, three times at most
      handoffFailures += 1;
      if (handoffOpen || handoffFailures <= 3) {
        const wait = Math.min(HANDOFF_POLL_MS * 2 ** (handoffFailures - 1), 60000);
        handoffTimer = setTimeout(() => { handoffTimer = null; watchHandoff(); }, wait);
      }
      return;
    }
    handoffFailures = 0;
    const open = Boolean(data) && (data.status === "waiting" || data.status === "owned");
    if (data && (open || handoffOpen)) {
      for (const m of data.messages) {
        handoffSeen = Math.max(handoffSeen, m.id);
        if (m.author === "bot" && m.text === lastAnswer) continue;
        const box = bubble("bot", m.author === "staff" ? "staff" : "");
        if (m.author === "staff") box.appendChild(el("p", "notice", "👤 Cán bộ BHXH trả lời:"));
        textParagraphs(box, m.text);
        scrollToStart(box.parentElement);
      }
    } else if (data) {
      (data.messages || []).forEach((m) => { handoffSeen = Math.max(handoffSeen, m.id); });  // an old, closed one
    }
    handoffOpen = open;
    if (open) handoffTimer = setTimeout(() => { handoffTimer = null; watchHandoff(); }, HANDOFF_POLL_MS);
  }

  watchHandoff();  // a reload while a staff member has the chat

  document.querySelectorAll("#welcome .chip").forEach((chip) => {
    chip.addEventListener("click", () => ask(chip.textContent));
  });
})();
