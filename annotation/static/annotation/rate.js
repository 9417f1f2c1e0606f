/* Verdict rate page: keyboard-first ranking of K outputs, ties allowed, drag and drop too.
 *
 * A ranking is a list of slots, best first: {id, tied}, where `tied` means "equal to the slot above".
 * On submit it is sent as tie groups of completion ids: [[12], [10, 13], [11]] = 12 > 10 = 13 > 11.
 * No inline script (CSP): the page hands its data over in the #rate-data json_script element, with every string
 * the script shows already in the rater's language (data.strings, from annotation.views.rate_strings).
 */
(function () {
  "use strict";

  const dataEl = document.getElementById("rate-data");
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const startedAt = performance.now();
  const carriedMs = Number(data.initial && data.initial.time_spent_ms) || 0;
  const strings = data.strings || {};

  // A translated string with its %(name)s placeholders filled in (the key itself if the page sent no such string).
  function t(key, values) {
    const text = strings[key] === undefined ? key : strings[key];
    return text.replace(/%\((\w+)\)s/g, (whole, name) => (values && name in values ? String(values[name]) : whole));
  }

  const form = document.getElementById("rank-form");
  const statusEl = document.getElementById("status");
  const K = data.outputs.length;
  const idByNumber = new Map(data.outputs.map((o) => [o.n, o.id]));
  const numberById = new Map(data.outputs.map((o) => [o.id, o.n]));
  const previewById = new Map(
    data.outputs.map((o) => {
      const body = document.querySelector(`#output-${o.n} .output-body`);
      const text = body ? body.textContent.replace(/\s+/g, " ").trim() : "";
      return [o.id, text.length > 70 ? text.slice(0, 69) + "…" : text];
    })
  );

  /* ---- model ------------------------------------------------------------------------------- */

  function slotsFromGroups(groups) {
    const slots = [];
    const seen = new Set();
    (Array.isArray(groups) ? groups : []).forEach((group) => {
      let first = true;
      (Array.isArray(group) ? group : [group]).forEach((id) => {
        if (!numberById.has(id) || seen.has(id)) return;
        seen.add(id);
        slots.push({ id: id, tied: !first && slots.length > 0 });
        first = false;
      });
    });
    return slots;
  }

  function groupsOf(slots) {
    const groups = [];
    slots.forEach((slot, i) => {
      if (i === 0 || !slot.tied) groups.push([slot.id]);
      else groups[groups.length - 1].push(slot.id);
    });
    return groups;
  }

  // `shown` is the name as messages show it: the server made its bidirectional controls visible markers.
  function makeRanking(name, groups, shown) {
    const el = document.querySelector(`.ranking[data-ranking="${CSS.escape(name)}"]`);
    const slots = slotsFromGroups(groups);
    return { name: name, shown: shown || name, el: el, slots: slots, focus: slots.length - 1,
             history: slots.map((s) => s.id) };
  }

  const initial = data.initial || {};
  const criteriaInitial = initial.criteria_orders || {};
  const rankings = [makeRanking("overall", initial.order)].concat(
    (data.criteria || []).map((c, i) => makeRanking(c, criteriaInitial[c], (data.criteria_shown || [])[i]))
  );
  let active = 0;
  let pendingTie = false;
  let submitting = false;
  let confirmKey = null;
  let confirmTimer = null;
  let message = "";

  const current = () => rankings[active];
  const indexOf = (r, id) => r.slots.findIndex((s) => s.id === id);

  function normalise(r) {
    if (r.slots.length) r.slots[0].tied = false;
    r.focus = Math.max(Math.min(r.focus, r.slots.length - 1), r.slots.length ? 0 : -1);
  }

  function removeAt(r, i) {
    const [removed] = r.slots.splice(i, 1);
    // Removing the head of a tie group: the next member becomes the head, still tied to nothing above.
    if (removed && !removed.tied && i < r.slots.length && r.slots[i].tied) r.slots[i].tied = false;
    normalise(r);
    return removed;
  }

  function insertAt(r, id, index, tied) {
    const old = indexOf(r, id);
    if (old !== -1) {
      removeAt(r, old);
      if (old < index) index -= 1;
    }
    index = Math.max(0, Math.min(index, r.slots.length));
    // Dropped strictly between two tied outputs: it splits their group.
    if (!tied && index < r.slots.length && r.slots[index].tied) r.slots[index].tied = false;
    r.slots.splice(index, 0, { id: id, tied: tied && index > 0 });
    r.history.push(id);
    r.focus = index;
    normalise(r);
  }

  function pick(id, tied) {
    const r = current();
    insertAt(r, id, r.slots.length, tied);
  }

  function undo() {
    const r = current();
    while (r.history.length) {
      const id = r.history.pop();
      const i = indexOf(r, id);
      if (i !== -1) {
        removeAt(r, i);
        r.focus = r.slots.length - 1;
        return;
      }
    }
  }

  function moveFocus(delta) {
    const r = current();
    if (!r.slots.length) return;
    r.focus = Math.max(0, Math.min(r.slots.length - 1, (r.focus < 0 ? 0 : r.focus + delta)));
    scrollToFocused();
  }

  function moveFocused(delta) {
    // The rank slots stay put (with their tie marks); the focused output swaps places with its neighbour.
    const r = current();
    const i = r.focus;
    const j = i + delta;
    if (i < 0 || j < 0 || j >= r.slots.length) return;
    const id = r.slots[i].id;
    r.slots[i].id = r.slots[j].id;
    r.slots[j].id = id;
    r.focus = j;
    scrollToFocused();
  }

  function toggleTie() {
    const r = current();
    if (r.focus > 0) r.slots[r.focus].tied = !r.slots[r.focus].tied;
    else message = t("nothing_above");
  }

  function removeFocused() {
    const r = current();
    if (r.focus >= 0) removeAt(r, r.focus);
  }

  function unrankedIds(r) {
    const ranked = new Set(r.slots.map((s) => s.id));
    return data.outputs.map((o) => o.id).filter((id) => !ranked.has(id));
  }

  /* ---- view -------------------------------------------------------------------------------- */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function rankNumbers(slots) {
    let rank = 0;
    return slots.map((slot, i) => {
      if (i === 0 || !slot.tied) rank += 1;
      return rank;
    });
  }

  function renderRanking(r, isActive) {
    if (!r.el) return;
    r.el.classList.toggle("is-active", isActive);
    const ranks = rankNumbers(r.slots);
    const groupSize = new Map();
    ranks.forEach((rank) => groupSize.set(rank, (groupSize.get(rank) || 0) + 1));
    const list = r.el.querySelector(".slots");
    list.replaceChildren(
      ...r.slots.map((slot, i) => {
        const li = el("li", "slot rank-" + Math.min(ranks[i], 4));
        li.dataset.id = slot.id;
        li.draggable = true;
        if (slot.tied) li.classList.add("tied");
        if (isActive && i === r.focus) li.classList.add("is-focused");
        const badge = el("span", "slot-rank", groupSize.get(ranks[i]) > 1 ? `${ranks[i]}=` : String(ranks[i]));
        const num = el("span", "out-num", String(numberById.get(slot.id)));
        const preview = el("span", "preview", previewById.get(slot.id));
        li.append(badge, num, preview);
        if (slot.tied) li.title = t("tied_title");
        return li;
      })
    );
    if (!r.slots.length) list.append(el("li", "slots-empty", t("slots_empty", { k: K })));
    const chips = r.el.querySelector(".unranked .chips");
    const rest = unrankedIds(r);
    chips.replaceChildren(
      ...rest.map((id) => {
        const chip = el("li", "chip", String(numberById.get(id)));
        chip.dataset.id = id;
        chip.draggable = true;
        chip.title = t("chip_title", { n: numberById.get(id) });
        return chip;
      })
    );
    r.el.querySelector(".unranked").classList.toggle("is-empty", rest.length === 0);
  }

  function renderCards() {
    const overall = rankings[0];
    const ranks = rankNumbers(overall.slots);
    const groupSize = new Map();
    ranks.forEach((rank) => groupSize.set(rank, (groupSize.get(rank) || 0) + 1));
    const r = current();
    const focusedId = r.focus >= 0 && r.slots[r.focus] ? r.slots[r.focus].id : null;
    data.outputs.forEach((o) => {
      const card = document.getElementById("output-" + o.n);
      const badge = card.querySelector(".rank-badge");
      const i = indexOf(overall, o.id);
      badge.className = "rank-badge";
      if (i === -1) {
        badge.textContent = t("unranked");
      } else {
        badge.textContent = t(groupSize.get(ranks[i]) > 1 ? "rank_badge_tie" : "rank_badge", { rank: ranks[i] });
        badge.classList.add("rank-" + Math.min(ranks[i], 4));
      }
      card.classList.toggle("is-ranked", i !== -1);
      card.classList.toggle("is-focused", o.id === focusedId);
    });
  }

  function statusText() {
    if (message) return message;
    if (confirmKey === "s") return t("confirm_skip");
    if (confirmKey === "f") return t("confirm_flag");
    const r = current();
    const label = r.name === "overall" ? "" : t("criterion_label", { criterion: r.shown });
    if (pendingTie) return t("pending_tie");
    if (r.slots.length === K) return t("all_ranked", { k: K, label: label });
    if (r.slots.length === K - 1 && r.name === "overall") return t("one_left", { done: K - 1, k: K });
    return t("progress", { done: r.slots.length, k: K, label: label });
  }

  function render() {
    rankings.forEach((r, i) => renderRanking(r, i === active));
    renderCards();
    statusEl.textContent = statusText();
    statusEl.classList.toggle("is-warning", Boolean(message || confirmKey));
  }

  function scrollToFocused() {
    const r = current();
    const slot = r.slots[r.focus];
    if (!slot) return;
    const card = document.getElementById("output-" + numberById.get(slot.id));
    if (card) card.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  /* ---- panels ------------------------------------------------------------------------------ */

  const guidelinesToggle = document.getElementById("guidelines-toggle");
  const guidelinesBody = document.getElementById("guidelines-body");
  const helpOverlay = document.getElementById("help-overlay");
  const criteriaPanel = document.getElementById("criteria-panel");
  const rationale = document.getElementById("rationale");

  function setGuidelines(open) {
    guidelinesBody.hidden = !open;
    guidelinesToggle.setAttribute("aria-expanded", String(open));
    try {
      localStorage.setItem("verdict.guidelines", open ? "open" : "closed");
    } catch (e) {
      /* storage may be disabled; the toggle still works */
    }
  }

  function storedGuidelinesOpen() {
    try {
      return localStorage.getItem("verdict.guidelines") !== "closed";
    } catch (e) {
      return true;
    }
  }

  function setHelp(open) {
    helpOverlay.hidden = !open;
  }

  function cycleRanking() {
    if (rankings.length < 2) {
      message = t("no_criteria");
      return;
    }
    active = (active + 1) % rankings.length;
    pendingTie = false;
    if (criteriaPanel) criteriaPanel.open = active > 0 || criteriaPanel.open;
    if (current().el) current().el.scrollIntoView({ block: "nearest" });
    message = active === 0 ? t("now_overall") : t("now_criterion", { criterion: current().shown });
  }

  /* ---- submit / skip ----------------------------------------------------------------------- */

  function prepareSubmit() {
    const overall = rankings[0];
    if (overall.slots.length === K - 1) {
      const last = unrankedIds(overall)[0];
      insertAt(overall, last, overall.slots.length, false);
    }
    if (overall.slots.length < K) {
      message = t("rank_all_first", { k: K, done: overall.slots.length });
      active = 0;
      return false;
    }
    const criteria = {};
    for (const r of rankings.slice(1)) {
      if (!r.slots.length) continue;
      if (r.slots.length < K) {
        message = t("finish_criterion", { criterion: r.shown, done: r.slots.length, k: K });
        active = rankings.indexOf(r);
        if (criteriaPanel) criteriaPanel.open = true;
        return false;
      }
      criteria[r.name] = groupsOf(r.slots);
    }
    document.getElementById("field-order").value = JSON.stringify(groupsOf(overall.slots));
    document.getElementById("field-criteria").value = JSON.stringify(criteria);
    document.getElementById("field-time").value = String(Math.round(carriedMs + performance.now() - startedAt));
    return true;
  }

  form.addEventListener("submit", (event) => {
    if (submitting) {
      event.preventDefault();
      return;
    }
    if (!prepareSubmit()) {
      event.preventDefault();
      render();
      return;
    }
    submitting = true;
    message = t("submitting");
    render();
  });

  window.addEventListener("pageshow", (event) => {
    if (event.persisted) submitting = false; // back/forward cache: the page is live again
  });

  function submitNow() {
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else if (prepareSubmit()) form.submit();
  }

  function confirmThen(key, formId) {
    if (confirmKey === key) {
      clearTimeout(confirmTimer);
      confirmKey = null;
      submitting = true;
      document.getElementById(formId).submit();
      return;
    }
    confirmKey = key;
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => {
      confirmKey = null;
      render();
    }, 3000);
  }

  /* ---- keyboard ---------------------------------------------------------------------------- */

  function isTextEntry(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    const tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    return !["checkbox", "radio", "button", "submit", "reset"].includes((target.type || "").toLowerCase());
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    if (isTextEntry(event.target)) {
      // Typing in the rationale never triggers shortcuts; Esc leaves the box, Ctrl+Enter submits.
      if (event.key === "Escape") event.target.blur();
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submitNow();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    // Enter on a button or link the rater tabbed to does what that control says.
    if (key === "Enter" && event.target.closest && event.target.closest("button, a[href], summary")) return;
    if (!helpOverlay.hidden) {
      if (key === "Escape" || key === "?") {
        setHelp(false);
        event.preventDefault();
      }
      return;
    }
    if (submitting) return;
    message = "";
    if (confirmKey && key !== confirmKey) confirmKey = null;
    let handled = true;
    if (/^[1-9]$/.test(key)) {
      const id = idByNumber.get(Number(key));
      if (id === undefined) message = t("only_k", { k: K });
      else pick(id, pendingTie);
      pendingTie = false;
    } else if (key === "=" || key === "+") {
      if (current().slots.length) pendingTie = true;
      else message = t("tie_needs_pick");
    } else if (key === "Backspace") {
      if (pendingTie) pendingTie = false;
      else undo();
    } else if ((key === "ArrowUp" && event.shiftKey) || key === "K") {
      moveFocused(-1);
    } else if ((key === "ArrowDown" && event.shiftKey) || key === "J") {
      moveFocused(1);
    } else if (key === "ArrowUp" || key === "k") {
      moveFocus(-1);
    } else if (key === "ArrowDown" || key === "j") {
      moveFocus(1);
    } else if (key === "t") {
      toggleTie();
    } else if (key === "x" || key === "Delete") {
      removeFocused();
    } else if (key === "Enter") {
      pendingTie = false;
      submitNow();
    } else if (key === "s") {
      confirmThen("s", "skip-form");
    } else if (key === "f") {
      confirmThen("f", "flag-form");
    } else if (key === "g") {
      setGuidelines(guidelinesBody.hidden);
    } else if (key === "?") {
      setHelp(true);
    } else if (key === "c") {
      cycleRanking();
    } else if (key === "r") {
      rationale.focus();
    } else if (key === "Escape") {
      pendingTie = false;
      confirmKey = null;
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      render();
    }
  });

  /* ---- mouse: click and drag and drop ------------------------------------------------------ */

  let dragId = null;

  function rankingOf(node) {
    const host = node && node.closest(".ranking");
    return host ? rankings.find((r) => r.el === host) : null;
  }

  function clearDropMarks() {
    document.querySelectorAll(".drop-before, .drop-after, .drop-onto, .drop-target").forEach((n) => {
      n.classList.remove("drop-before", "drop-after", "drop-onto", "drop-target");
    });
  }

  function dropPlace(event, list) {
    const li = event.target.closest("li.slot");
    if (!li || !list.contains(li)) return { li: null, where: "end" };
    const box = li.getBoundingClientRect();
    const y = (event.clientY - box.top) / Math.max(box.height, 1);
    return { li: li, where: y < 0.3 ? "before" : y > 0.7 ? "after" : "onto" };
  }

  document.addEventListener("dragstart", (event) => {
    // Only the output headers, ranked slots and unranked chips are drag handles (not selected text).
    const handle = event.target.closest && event.target.closest(".output-head, li.slot, .chip");
    if (!handle) return;
    const id = Number((handle.dataset.id ? handle : handle.closest(".output")).dataset.id);
    if (!numberById.has(id)) return;
    dragId = id;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", t("drag_label", { n: numberById.get(id) }));
  });

  document.addEventListener("dragend", () => {
    dragId = null;
    clearDropMarks();
  });

  rankings.forEach((r) => {
    if (!r.el) return;
    const list = r.el.querySelector(".slots");
    const pool = r.el.querySelector(".unranked");
    list.addEventListener("dragover", (event) => {
      if (dragId === null) return;
      event.preventDefault();
      clearDropMarks();
      const place = dropPlace(event, list);
      if (place.li) place.li.classList.add("drop-" + place.where);
      else list.classList.add("drop-target");
    });
    list.addEventListener("dragleave", (event) => {
      if (!list.contains(event.relatedTarget)) clearDropMarks();
    });
    list.addEventListener("drop", (event) => {
      if (dragId === null) return;
      event.preventDefault();
      const place = dropPlace(event, list);
      active = rankings.indexOf(r);
      if (!place.li) {
        insertAt(r, dragId, r.slots.length, false);
      } else {
        const targetId = Number(place.li.dataset.id);
        if (targetId !== dragId) {
          const i = indexOf(r, targetId);
          if (place.where === "before") insertAt(r, dragId, i, false);
          else insertAt(r, dragId, i + 1, place.where === "onto");
        }
      }
      dragId = null;
      clearDropMarks();
      message = "";
      render();
    });
    pool.addEventListener("dragover", (event) => {
      if (dragId === null || indexOf(r, dragId) === -1) return;
      event.preventDefault();
      pool.classList.add("drop-target");
    });
    pool.addEventListener("dragleave", () => pool.classList.remove("drop-target"));
    pool.addEventListener("drop", (event) => {
      if (dragId === null) return;
      event.preventDefault();
      const i = indexOf(r, dragId);
      if (i !== -1) removeAt(r, i);
      dragId = null;
      clearDropMarks();
      render();
    });
  });

  document.addEventListener("click", (event) => {
    const chip = event.target.closest(".unranked .chip");
    const slot = event.target.closest("li.slot");
    const r = rankingOf(chip || slot);
    if (!r) return;
    active = rankings.indexOf(r);
    message = "";
    if (chip) pick(Number(chip.dataset.id), false);
    else r.focus = indexOf(r, Number(slot.dataset.id));
    render();
  });

  guidelinesToggle.addEventListener("click", () => setGuidelines(guidelinesBody.hidden));
  helpOverlay.addEventListener("click", (event) => {
    if (event.target === helpOverlay) setHelp(false);
  });
  document.getElementById("keybar").addEventListener("click", () => setHelp(true));

  // Long outputs are capped in height (rate.css); those that overflow get a "Show all" control.
  document.querySelectorAll("article.output").forEach((card) => {
    const body = card.querySelector(".output-body");
    const button = card.querySelector("button.expand");
    if (!body || !button || body.scrollHeight <= body.clientHeight + 4) return;
    button.hidden = false;
    button.addEventListener("click", () => {
      const open = card.classList.toggle("is-expanded");
      button.setAttribute("aria-expanded", String(open));
      button.textContent = open ? t("show_less") : t("show_all");
      if (!open) card.scrollIntoView({ block: "nearest" });
    });
  });

  setGuidelines(storedGuidelinesOpen());
  document.body.classList.add("js-ready");
  render();
})();
