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
async function explain(user, item, button) {
  try {
    const e = await call(`/users/${encodeURIComponent(user)}/explain?item_id=${encodeURIComponent(item)}`);
    const div = document.createElement("div"); div.className = "why";
    const hist = e.history.map((h) => `${h.item_id} (${(100 * h.share).toFixed(0)}%)`).join(", ");
    const fields = e.fields.map((f) => `${f.field} (${(100 * f.share).toFixed(0)}%)`).join(", ");
    div.textContent = `history: ${hist}` + (fields ? ` · text fields: ${fields}` : "") + ` [${e.method}]`;
    button.replaceWith(div);
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
  fill($("history"), history.map((x) => [x, ""]));
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
$("show-user").onclick = showUser; $("show-new").onclick = showNew; $("add-item").onclick = addItem;
(async () => {
  try {
    const h = await call("/health");
    $("health").textContent = `${h.model_class} · version ${h.version} · ${h.items} items · ${h.users} users`;
    const u = await call("/users?limit=200");
    $("users").replaceChildren(...u.users.map((x) => { const o = document.createElement("option"); o.value = x; return o; }));
  } catch (err) { showError(err); }
})();
