// Hộp thư cán bộ (templates/handoff.html): the queue of handed-off conversations, one conversation, take /
// reply / close, and a closed conversation's question into the knowledge base. The JSON API is
// admin_api/handoff_api.py; changes carry the page's CSRF value (the session cookie alone is not enough).
"use strict";
(function () {
  const csrf = document.body.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  let items = [];
  let current = null;

  function waited(seconds) {
    if (seconds < 60) return "vừa xong";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " phút";
    const hours = Math.floor(minutes / 60);
    return hours < 48 ? hours + " giờ " + (minutes % 60) + " phút" : Math.floor(hours / 24) + " ngày";
  }

  function localTime(ts) {
    const d = new Date(ts);
    return d.toLocaleString("vi-VN", { hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit",
                                       timeZone: "Asia/Ho_Chi_Minh" });
  }

  const STATUS = { waiting: "Đang chờ", owned: "Đang xử lý", closed: "Đã đóng" };

  async function api(path, body) {
    const options = body === undefined ? {} : {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    };
    const response = await fetch("/admin/handoffs" + path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || ("Lỗi " + response.status));
    return data;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderQueue() {
    const list = $("queue");
    list.replaceChildren();
    const open = items.filter((h) => h.status !== "closed");
    $("count").textContent = String(open.length);
    document.title = (open.length ? "(" + open.length + ") " : "") + "Hộp thư cán bộ · Trợ lý BHXH";
    $("empty").hidden = items.length > 0;
    for (const h of items) {
      const button = el("button");
      button.type = "button";
      button.dataset.id = String(h.id);
      button.setAttribute("aria-current", current && current.id === h.id ? "true" : "false");
      const line1 = el("span", "line1");
      line1.append(el("span", "", h.channel_label + (h.topic_label ? " · " + h.topic_label : "")),
                   el("span", "badge " + h.status, STATUS[h.status]));
      const citizen = h.messages.filter((m) => m.author === "citizen");
      const last = citizen.length ? citizen[citizen.length - 1].text : "";
      const line2 = el("span", "line2", "Chờ " + waited(h.waiting_seconds) + " · " + h.reason_label +
                       (h.owner ? " · " + h.owner : ""));
      button.append(line1, el("div", "preview", last), line2);
      button.addEventListener("click", () => open_(h.id));
      const li = el("li");
      li.append(button);
      list.append(li);
    }
  }

  function renderThread() {
    const h = current;
    $("thread").hidden = !h;
    $("inbox").classList.toggle("reading", Boolean(h));
    if (!h) return;
    $("thread-title").textContent = h.channel_label + " · " + STATUS[h.status];
    $("thread-meta").textContent = [h.topic_label, h.reason_label, "yêu cầu lúc " + localTime(h.requested_ts),
                                    h.owner ? "cán bộ: " + h.owner : "chưa ai nhận"].filter(Boolean).join(" · ");
    const list = $("messages");
    list.replaceChildren();
    for (const m of h.messages) {
      const li = el("li", m.author, m.text);
      const who = m.author === "staff" ? (m.staff || "Cán bộ") : m.author === "bot" ? "Trợ lý (tự động)" : "Người dân";
      const note = m.delivery && m.delivery !== "sent" ? " · " + m.delivery : "";
      li.append(el("small", "", who + " · " + localTime(m.ts) + note));
      list.append(li);
    }
    list.scrollTop = list.scrollHeight;
    const closed = h.status === "closed";
    $("reply-form").hidden = closed;
    $("take").hidden = h.status !== "waiting";
    $("kb-form").hidden = !closed || Boolean(h.kb_action);
  }

  function notify(text, bad) {
    const n = $("notice");
    n.textContent = text;
    n.classList.toggle("bad", Boolean(bad));
    n.hidden = !text;
  }

  async function refresh() {
    const statuses = $("show-closed").checked ? "waiting,owned,closed" : "waiting,owned";
    try {
      items = await api("?status=" + statuses);
    } catch (error) {
      notify(error.message, true);
      return;
    }
    if (current) current = items.find((h) => h.id === current.id) || current;
    renderQueue();
    renderThread();
  }

  function open_(id) {
    current = items.find((h) => h.id === id) || null;
    notify("");
    renderQueue();
    renderThread();
    if (current && current.status !== "closed") checkWindow(current.id);
  }

  // Zalo OA answers only within 7 days of the citizen's last message (paid after 48 h): say so up front.
  async function checkWindow(id) {
    try {
      const check = await api("/" + id + "/can-reply");
      if (current && current.id === id && check.reason) notify(check.reason, !check.ok);
      $("send").disabled = !check.ok;
    } catch (error) {
      notify(error.message, true);
    }
  }

  async function act(action) {
    try {
      await action();
    } catch (error) {
      notify(error.message, true);
    }
    renderQueue();
    renderThread();
  }

  $("take").addEventListener("click", () => act(async () => {
    current = await api("/" + current.id + "/take", {});
    notify("Bạn đã nhận xử lý cuộc trò chuyện này.");
    await refresh();
  }));
  $("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text) return;
    act(async () => {
      const result = await api("/" + current.id + "/reply", { text });
      current = result.handoff;
      if (result.sent) {
        $("reply-text").value = "";
        notify(result.reason ? "Đã gửi. Lưu ý: " + result.reason : "Đã gửi tới người dân.");
      } else {
        notify("Chưa gửi được: " + (result.reason || "không rõ lý do"), true);
      }
      await refresh();
    });
  });
  $("close").addEventListener("click", () => act(async () => {
    const result = await api("/" + current.id + "/close", {});
    current = result.handoff;
    notify("Đã đóng. Bot sẽ trả lời người dân như trước.");
    $("show-closed").checked = true;
    await refresh();
  }));
  $("kb-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      const result = await api("/" + current.id + "/kb", { kind: "paraphrase", entry_id: $("kb-entry").value.trim() });
      notify("Đã thêm cách hỏi «" + result.kb_action.text + "» vào mục " + result.kb_action.entry_id + " (chờ duyệt).");
      await refresh();
    });
  });
  $("to-queue").addEventListener("click", () => { current = null; renderQueue(); renderThread(); });
  $("show-closed").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 10000);
})();
