// The web page's script (a file, so the Content-Security-Policy allows scripts from this server only).
const $ = (id) => document.getElementById(id);
async function call(path, options = {}) {
  const key = $("api-key").value;  // sent when given: write routes, and read routes of a --protect-reads server
  const headers = {...(options.headers || {}), ...(key ? {"X-API-Key": key} : {})};
  const r = await fetch(path, {...options, headers});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}
function showError(e) { $("error").textContent = e ? e.message : ""; }
function fill(table, rows) {
  const body = table.tBodies[0]; body.innerHTML = "";
  for (const cells of rows) {
    const tr = body.insertRow();
    for (const c of cells) { const td = tr.insertCell(); if (c instanceof Node) td.append(c); else td.textContent = c; }
  }
}
function showRecs(result, user) {
  const max = Math.max(...result.items.map((x) => Math.abs(x.score)), 1e-9);
  fill($("recs"), result.items.map((x, i) => {
    const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = (60 * Math.abs(x.score) / max) + "px";
    const score = document.createElement("span"); score.append(bar, " " + x.score.toFixed(3));
    const why = document.createElement("button"); why.textContent = "why?"; why.disabled = !user;
    why.onclick = () => explain(user, x.item, why);
    return [i + 1, x.item, x.title || "", score, why];
  }));
}
function shareRow(table, label, share) {
  const tr = table.insertRow();
  const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = (80 * Math.min(Math.abs(share), 1)) + "px";
  tr.insertCell().textContent = label;
  tr.insertCell().append(bar, ` ${(100 * share).toFixed(0)}%`);
}
async function explain(user, item, button) {
  try {
    const e = await call(`/users/${encodeURIComponent(user)}/explain?item_id=${encodeURIComponent(item)}`);
    const div = document.createElement("div"); div.className = "why";
    const table = document.createElement("table");
    table.insertRow().insertCell().textContent = `because of the history (${e.method}):`;
    for (const h of e.history) shareRow(table, h.title ? `${h.title} (${h.item_id})` : h.item_id, h.share);
    if (e.fields.length) table.insertRow().insertCell().textContent = "text fields of the item:";
    for (const f of e.fields) shareRow(table, f.field, f.share);
    div.append(table);
    button.replaceWith(div);
  } catch (err) { showError(err); }
}
async function findItems() {
  showError(null);
  const q = $("find").value.trim();
  if (!q) return;
  try {
    const r = await call(`/items/search?q=${encodeURIComponent(q)}&limit=10`);
    fill($("found"), r.items.map((x) => {
      const add = document.createElement("button"); add.textContent = "liked";
      add.onclick = () => {
        const liked = $("liked").value.split(",").map((s) => s.trim()).filter(Boolean);
        if (!liked.includes(x.item)) liked.push(x.item);
        $("liked").value = liked.join(", ");
        $("history").tBodies[0].insertRow().append(...[x.item, x.title || ""].map((t) => {
          const td = document.createElement("td"); td.textContent = t; return td; }));
      };
      return [x.item, x.title || "", add];
    }));
    if (!r.items.length) showError(new Error(`no item title contains "${q}"`));
  } catch (err) { showError(err); }
}
async function showUser() {
  showError(null);
  const user = $("user").value.trim(), k = $("k").value;
  try {
    const h = await call(`/users/${encodeURIComponent(user)}/history?limit=20`);
    fill($("history"), h.items.map((x) => [x.item, x.title || ""]));
    showRecs(await call(`/users/${encodeURIComponent(user)}/recommendations?k=${k}`), user);
  } catch (err) { showError(err); }
}
async function showNew() {
  showError(null);
  const history = $("liked").value.split(",").map((s) => s.trim()).filter(Boolean);
  const profile = $("profile").value.trim() || null;
  const titles = {};
  for (const row of $("history").tBodies[0].rows) titles[row.cells[0].textContent] = row.cells[1] ? row.cells[1].textContent : "";
  fill($("history"), history.map((x) => [x, titles[x] || ""]));
  try {
    showRecs(await call("/recommendations", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({history, profile, k: Number($("k").value)})}), null);
  } catch (err) { showError(err); }
}
async function addItem() {
  $("add-result").textContent = "";
  try {
    const extra = $("new-fields").value.trim() ? JSON.parse($("new-fields").value) : {};
    const r = await call("/items", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({items: [{item: $("new-id").value.trim(), title: $("new-title").value.trim(), ...extra}]})});
    $("add-result").textContent = `added: ${r.added.join(", ") || "-"}; updated: ${r.updated.join(", ") || "-"}`;
  } catch (err) { $("add-result").textContent = "error: " + err.message; }
}
$("find-go").onclick = findItems;
$("find").onkeydown = (ev) => { if (ev.key === "Enter") findItems(); };
$("show-user").onclick = showUser; $("show-new").onclick = showNew; $("add-item").onclick = addItem;
(async () => {
  try {
    const h = await call("/health");
    $("health").textContent = `${h.model_class} · version ${h.version} · ${h.items} items · ${h.users} users`;
    const u = await call("/users?limit=200");
    $("users").replaceChildren(...u.users.map((x) => { const o = document.createElement("option"); o.value = x; return o; }));
  } catch (err) { showError(err); }
})();
