/**
 * The TwiML documents the voice webhook answers with. Every value that lands in an attribute or a
 * text node is XML-escaped: tokens and URLs come from config and signing, but nothing here trusts
 * that.
 */

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

const DOCUMENT = '<?xml version="1.0" encoding="UTF-8"?>';

/** The spoken lines a caller may hear from the api itself, before any agent is on the line. */
export const SPOKEN = {
  notInService: 'Sorry, the number you dialled is not in service.',
  unavailable: 'Sorry, we cannot take your call right now. Please try again later. Goodbye.',
  busy: 'All of our agents are busy right now. Please call again in a few minutes. Goodbye.',
  apology: 'Sorry, something went wrong on our side and we cannot take your call right now. Goodbye.',
} as const;

/** Says one line, then hangs up. */
export function sayAndHangUp(text: string): string {
  return `${DOCUMENT}<Response><Say>${xmlEscape(text)}</Say><Hangup/></Response>`;
}

/** Bridges the call's audio to the relay: a bidirectional Media Stream carrying the signed token. */
export function connectStream(options: { streamUrl: string; statusCallback: string; token: string }): string {
  return (
    `${DOCUMENT}<Response><Connect>` +
    `<Stream url="${xmlEscape(options.streamUrl)}" statusCallback="${xmlEscape(options.statusCallback)}">` +
    `<Parameter name="token" value="${xmlEscape(options.token)}"/>` +
    `</Stream></Connect></Response>`
  );
}
