// Microsoft Teams: an Adaptive Card, as a Teams "post to a channel when a
// webhook request is received" workflow expects it.
function handler(webhook) {
  const text = summary(webhook);
  const body = [
    { type: "TextBlock", text, wrap: true, weight: "Bolder", size: "Medium" },
    { type: "TextBlock", text: webhook.eventType, isSubtle: true, spacing: "None" },
  ];
  const fields = facts(webhook.payload, 20).map(([title, value]) => ({ title, value }));
  if (fields.length) body.push({ type: "FactSet", facts: fields });
  webhook.payload = {
    type: "message",
    attachments: [
      {
        contentType: "application/vnd.microsoft.card.adaptive",
        contentUrl: null,
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body,
        },
      },
    ],
  };
  return webhook;
}
