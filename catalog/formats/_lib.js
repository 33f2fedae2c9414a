// Shared by every ready-made format. Herald writes `const SUMMARIES = {...}`
// above this: each event type's sentence, from its schema's
// "x-herald-summary" in the catalog ("{member.firstname} joined {spot.name}").

// The value at a dotted path of the payload, or undefined.
function valueAt(payload, path) {
  return path.split(".").reduce((v, key) => (v == null ? undefined : v[key]), payload);
}

// The event as a sentence for a person; the event type when there is none.
function summary(webhook) {
  const template = SUMMARIES[webhook.eventType];
  if (!template) return webhook.eventType;
  return template
    .replace(/\{([^}]+)\}/g, (_, path) => {
      const value = valueAt(webhook.payload, path.trim());
      return value == null ? "" : String(value);
    })
    .replace(/\(\s*\)/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

// A timestamp field (a number of seconds in a key ending in "At") as an ISO
// 8601 date; anything else as it is.
function readable(key, value) {
  if (typeof value === "number" && /At$/.test(key) && value > 0) {
    return new Date(value * 1000).toISOString().replace(".000Z", "Z");
  }
  return value;
}

// The payload's fields as [name, text] pairs, at most `limit`, leaving out ids,
// empty values and the Test button's "test" mark.
function facts(payload, limit) {
  const out = [];
  (function walk(value, path) {
    if (out.length >= limit) return;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const key of Object.keys(value)) walk(value[key], path ? path + "." + key : key);
      return;
    }
    const key = path.split(".").pop();
    if (key === "id" || path === "test" || value == null || value === "") return;
    const text = Array.isArray(value)
      ? value.map((v) => (v && typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ")
      : String(readable(key, value));
    out.push([path, text]);
  })(payload, "");
  return out;
}

// When the event happened (`occurredAt`), as ISO 8601, if the payload says.
function occurredAt(payload) {
  const at = payload && payload.occurredAt;
  if (typeof at === "number") return readable("occurredAt", at);
  return typeof at === "string" ? at : undefined;
}

// `text` cut to `max` characters, with an ellipsis if it was longer.
function clip(text, max) {
  return text.length <= max ? text : text.slice(0, max - 1) + "…";
}
