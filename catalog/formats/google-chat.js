// Google Chat: an incoming webhook's message, with `text` and a `cardsV2` card.
function handler(webhook) {
  const text = summary(webhook);
  const card = { header: { title: clip(text, 200), subtitle: webhook.eventType } };
  const widgets = facts(webhook.payload, 20).map(([name, value]) => ({
    decoratedText: { topLabel: name, text: value, wrapText: true },
  }));
  if (widgets.length) card.sections = [{ widgets }];
  webhook.payload = { text, cardsV2: [{ cardId: "herald-event", card }] };
  return webhook;
}
