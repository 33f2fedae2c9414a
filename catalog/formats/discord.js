// Discord: a webhook message, with `content` and one embed of the fields.
function handler(webhook) {
  const text = summary(webhook);
  const embed = {
    title: clip(webhook.eventType, 256),
    description: clip(text, 4096),
    fields: facts(webhook.payload, 25).map(([name, value]) => ({
      name: clip(name, 256),
      value: clip(value, 1024),
      inline: true,
    })),
  };
  const at = occurredAt(webhook.payload);
  if (at) embed.timestamp = at;
  webhook.payload = { content: clip(text, 2000), embeds: [embed] };
  return webhook;
}
