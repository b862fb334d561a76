// The API reference page: every route of /openapi.json with a form to try it (no assets from other servers).
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};
let spec = {};

function resolve(schema) {  // follow a $ref into components.schemas
  while (schema && schema.$ref) schema = spec.components.schemas[schema.$ref.split("/").pop()];
  return schema || {};
}
function typeOf(schema) {
  schema = resolve(schema);
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  if (schema.type === "array") return `array of ${typeOf(schema.items)}`;
  return schema.title && !schema.type ? schema.title : (schema.type || "any");
}
function limits(schema) {
  schema = resolve(schema);
  const inner = (schema.anyOf || []).map(resolve).find((s) => s.type && s.type !== "null") || schema;
  const words = [["minimum", "≥"], ["maximum", "≤"], ["exclusiveMinimum", ">"], ["minLength", "min length"],
                 ["maxLength", "max length"], ["minItems", "min entries"], ["maxItems", "max entries"]];
  const out = words.filter(([k]) => inner[k] !== undefined).map(([k, w]) => `${w} ${inner[k]}`);
  if (schema.default !== undefined) out.push(`default ${JSON.stringify(schema.default)}`);
  return out.join(", ");
}
function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {textContent: h})))),
            el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {textContent: c}))))));
}
function example(schema) {  // a skeleton body to edit in the form
  schema = resolve(schema);
  if (schema.anyOf) return example(schema.anyOf.find((s) => s.type !== "null") || {});
  if (schema.default !== undefined) return schema.default;
  if (schema.type === "object" || schema.properties) {
    const out = {};
    for (const [name, s] of Object.entries(schema.properties || {})) {
      if ((schema.required || []).includes(name) || resolve(s).default === undefined) out[name] = example(s);
    }
    return out;
  }
  return {array: [], string: "", integer: 0, number: 0, boolean: false}[schema.type] ?? null;
}

function route(path, method, op) {
  const params = op.parameters || [];
  const body = op.requestBody && resolve(op.requestBody.content["application/json"].schema);
  const inputs = {};
  const form = el("div", {className: "why"});
  for (const p of params) {
    inputs[p.name] = el("input", {placeholder: `${p.name} (${p.in})`, size: 16});
    form.append(inputs[p.name], " ");
  }
  const text = body && el("textarea", {rows: 4, cols: 70, value: JSON.stringify(example(body), null, 1)});
  const out = el("pre", {className: "muted"});
  const send = el("button", {textContent: "Try it"});
  send.onclick = async () => {
    let url = path;
    const query = new URLSearchParams();
    const headers = {"Content-Type": "application/json"};
    if ($("api-key").value) headers["X-API-Key"] = $("api-key").value;
    for (const p of params) {
      const v = inputs[p.name].value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(v));
      else if (p.in === "header") { if (v !== "") headers[p.name] = v; }
      else if (v !== "") query.append(p.name, v);
    }
    try {
      const r = await fetch(url + (query.toString() ? `?${query}` : ""), {method: method.toUpperCase(), headers,
                                                                   body: text ? text.value : undefined});
      out.textContent = `${r.status} ${r.statusText}\n` + (await r.text()).slice(0, 20000);
    } catch (err) { out.textContent = String(err); }
  };
  form.append(...(text ? [el("br"), text] : []), el("br"), send, out);
  const fields = body ? Object.entries(body.properties || {}).map(([name, s]) =>
    [name, typeOf(s), (body.required || []).includes(name) ? "yes" : "", limits(s), resolve(s).description || ""]) : [];
  return el("section", {className: "route"},
    el("h2", {textContent: `${method.toUpperCase()} ${path}`}),
    el("p", {textContent: op.summary || op.description || ""}),
    params.length ? table(["parameter", "in", "required", "type", "limits"],
                          params.map((p) => [p.name, p.in, p.required ? "yes" : "", typeOf(p.schema), limits(p.schema)])) : null,
    fields.length ? el("p", {className: "muted", textContent: `JSON body: ${body.title || ""}`}) : null,
    fields.length ? table(["field", "type", "required", "limits", "description"], fields) : null,
    el("p", {className: "muted", textContent: "answers: " + Object.entries(op.responses || {})
      .map(([code, r]) => `${code} ${r.description || ""}`).join(" · ")}),
    form);
}

(async () => {
  try {
    const r = await fetch("/openapi.json");
    spec = await r.json();
    $("title").textContent = `${spec.info.title} API ${spec.info.version}`;
    $("about").textContent = spec.info.description || "";
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) $("routes").append(route(path, method, op));
    }
  } catch (err) { $("error").textContent = `cannot read /openapi.json: ${err}`; }
})();
