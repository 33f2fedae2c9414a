// Slack: an incoming webhook's message, with `text` and Block Kit `blocks`.
function handler(webhook) {
  const text = clip(summary(webhook), 3000);
  const fields = facts(webhook.payload, 10).map(([name, value]) => ({
    type: "mrkdwn",
    text: clip(`*${name}*\n${value}`, 2000),
  }));
  const blocks = [{ type: "section", text: { type: "mrkdwn", text } }];
  if (fields.length) blocks.push({ type: "section", fields });
  blocks.push({
    type: "context",
    elements: [{ type: "mrkdwn", text: `\`${webhook.eventType}\`` }],
  });
  webhook.payload = { text, blocks };
  return webhook;
}
