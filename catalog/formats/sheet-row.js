// A sheet row (Zapier, Make, Google Sheets): one flat object, a column per
// field, dates readable.
function handler(webhook) {
  const row = { event_type: webhook.eventType, summary: summary(webhook) };
  const at = occurredAt(webhook.payload);
  if (at) row.occurred_at = at;
  for (const [name, value] of facts(webhook.payload, 200)) {
    const column = name.replace(/[^A-Za-z0-9]+/g, "_");
    if (column !== "occurredAt") row[column] = value;
  }
  webhook.payload = row;
  return webhook;
}
