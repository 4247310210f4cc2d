/**
 * WebSocket close codes of the relay's streams (Twilio Media Streams and browser test calls), with
 * no imports so the dashboard's voice client reads the same table as the relay.
 */
export const STREAM_CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  /** The stream token is missing, malformed, forged, expired or already used. */
  unauthorized: 4401,
  /** The client broke the protocol in a way the call cannot survive. */
  protocolError: 4400,
  /** No `start` arrived in time. */
  startTimeout: 4408,
  /** The call behind the token is over or unknown to Temporal. */
  callGone: 4410,
} as const;
