/**
 * Twilio's webhooks: the voice webhook that answers a call with TwiML, and the status, AMD and
 * media-stream callbacks that become signals to the call's workflow. Plain Express routes (Twilio
 * posts forms and reads XML), each request checked against `X-Twilio-Signature` for the public URL
 * Twilio called (PUBLIC_BASE_URL, since the api may sit behind a proxy).
 *
 * The voice webhook never answers Twilio with an error: whatever goes wrong, the caller hears a
 * sentence and the call ends. It is on the path of every ring, so it does only what it must:
 * one lookup (number → tenant, agent version), one admission transaction, one workflow start.
 */
import { performance } from 'node:perf_hooks';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowClient,
} from '@temporalio/client';
import express, { type Request, type RequestHandler, type Router } from 'express';
import twilio from 'twilio';
import {
  CALL_WORKFLOW,
  answeredBySignal,
  callStatusSignal,
  callWorkflowId,
  FINAL_CALL_STATUSES,
  hangupSignal,
  type CallStatus,
  type CallWorkflowInput,
} from '../../contracts/call';
import { concurrentCallLimit } from '../../contracts/plans';
import { withTenant } from '../../db/tenant-context';
import { sleep } from '../../lib/net';
import { signStreamToken } from '../../lib/stream-token';
import type { ApiDeps } from '../deps';
import { AppError, isDatabaseUnavailable, ServiceUnavailableError } from '../errors';
import { admitCall, markCallFailed } from '../../db/call-admission';
import { callIdForCallSid, callStartOptions } from '../services/call-starts';
import { connectStream, sayAndHangUp, SPOKEN } from '../services/twiml';

/** Past this, Temporal counts as unreachable: Twilio gives up on a webhook after 15 s. */
const TEMPORAL_DEADLINE_MS = 5_000;
/** A call lookup that met a connection PostgreSQL had just dropped is tried again on a fresh one. */
const LOOKUP_ATTEMPTS = 3;
const LOOKUP_RETRY_MS = 100;

/** Twilio's CallStatus values → the workflow's; `queued` is a call not yet ringing. */
const CALL_STATUSES: Record<string, CallStatus> = {
  queued: 'ringing',
  ringing: 'ringing',
  'in-progress': 'in-progress',
  completed: 'completed',
  busy: 'busy',
  failed: 'failed',
  'no-answer': 'no-answer',
  canceled: 'canceled',
};

/** A row of `parley_phone_route(e164)`. */
interface PhoneRoute {
  tenant_id: string;
  tenant_status: string;
  tenant_plan: string;
  tenant_settings: Record<string, unknown> | null;
  tenant_time_zone: string;
  phone_number_id: string;
  agent_id: string | null;
  agent_version_id: string | null;
}

/** A row of `parley_call_by_provider_sid(sid)` or `parley_call_by_id(id)`. */
interface ProviderCall {
  tenant_id: string;
  call_id: string;
  workflow_id: string;
  status: string;
  provider_call_sid?: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Outbound calls carry Parley's call id in their webhook URLs (`?callId=`, covered by the
 * signature): the answer may race the dialer recording the CallSid.
 */
function callIdOf(req: Request): string | undefined {
  const value = req.query.callId;
  return typeof value === 'string' && UUID.test(value) ? value : undefined;
}

type Form = Record<string, string | undefined>;

/** The posted form, one string per name (Twilio repeats none of the names read here). */
function formOf(req: Request): Form {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const form: Form = {};
  for (const [key, value] of Object.entries(body)) {
    form[key] = typeof value === 'string' ? value : Array.isArray(value) ? String(value[0]) : undefined;
  }
  return form;
}

/** 503 when no auth token is configured; 403 unless the signature matches the public URL and the form. */
function verifyTwilioSignature(deps: ApiDeps): RequestHandler {
  const publicBase = deps.config.PUBLIC_BASE_URL.replace(/\/+$/, '');
  return (req, _res, next) => {
    const authToken = deps.config.TWILIO_AUTH_TOKEN;
    if (!authToken) {
      next(
        new ServiceUnavailableError(
          'TWILIO_NOT_CONFIGURED',
          'Twilio webhooks are not configured on this server (TWILIO_AUTH_TOKEN is unset)',
        ),
      );
      return;
    }
    const signature = req.get('x-twilio-signature');
    const url = publicBase + req.originalUrl;
    if (!signature || !twilio.validateRequest(authToken, signature, url, (req.body ?? {}) as object)) {
      deps.logger.warn({ path: req.path, signed: Boolean(signature) }, 'Twilio webhook with a bad signature');
      next(
        new AppError(
          403,
          'TWILIO_SIGNATURE_INVALID',
          `X-Twilio-Signature is ${signature ? 'not valid' : 'missing'} for ${url}`,
        ),
      );
      return;
    }
    next();
  };
}

export function createTwilioWebhookRouter(deps: ApiDeps): Router {
  const { config, logger, orm, temporal } = deps;
  const relayBase = config.RELAY_PUBLIC_URL.replace(/\/+$/, '');
  const publicBase = config.PUBLIC_BASE_URL.replace(/\/+$/, '');
  const router = express.Router();
  router.use(express.urlencoded({ extended: false, limit: '64kb' }));
  router.use(verifyTwilioSignature(deps));

  const withinDeadline = <T>(work: (workflow: WorkflowClient) => Promise<T>): Promise<T> =>
    temporal.connection.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, () => work(temporal.workflow));

  /**
   * Runs a lookup function outside any tenant (SECURITY DEFINER; one round trip, no transaction).
   * Twilio retries neither a voice webhook (the callee hears an apology and is hung up on) nor a
   * status callback (the workflow never hears it): a read on a pooled connection PostgreSQL has
   * just dropped is retried, briefly, on a fresh one.
   */
  const lookup = async <T extends object>(sql: string, value: string): Promise<T[]> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await orm.em.fork().execute<T[]>(sql, [value]);
      } catch (err) {
        if (attempt >= LOOKUP_ATTEMPTS || !isDatabaseUnavailable(err)) throw err;
        await sleep(LOOKUP_RETRY_MS * attempt);
      }
    }
  };

  const streamTwiml = (claims: { callId: string; tenantId: string; workflowId: string; callSid: string }) =>
    connectStream({
      streamUrl: `${relayBase}/twilio/stream`,
      statusCallback: `${publicBase}/twilio/stream-status`,
      token: signStreamToken(
        config.STREAM_TOKEN_SECRET,
        { ...claims, channel: 'voice' },
        config.STREAM_TOKEN_TTL_SECONDS,
      ).token,
    });

  /**
   * Signals the workflow of the call with this CallSid (or, for outbound calls, Parley's call id);
   * a call or workflow that is gone is no error.
   */
  const signalCall = async (
    callSid: string,
    send: (workflowId: string) => Promise<void>,
    callId?: string,
  ): Promise<void> => {
    try {
      try {
        if (callId) {
          const [call] = await lookup<ProviderCall>('select * from parley_call_by_id(?)', callId);
          if (!call) throw new WorkflowNotFoundError(`no call ${callId}`, callWorkflowId(callId), undefined);
          await withinDeadline(() => send(call.workflow_id));
          return;
        }
        await withinDeadline(() => send(callWorkflowId(callSid)));
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        // Calls placed before their CallSid existed (campaigns) run under another id: ask the row.
        const [call] = await lookup<ProviderCall>('select * from parley_call_by_provider_sid(?)', callSid);
        if (!call || call.workflow_id === callWorkflowId(callSid)) throw err;
        await withinDeadline(() => send(call.workflow_id));
      }
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        logger.debug({ callSid }, 'Twilio callback for a call whose workflow is not running');
      } else {
        logger.warn({ err, callSid }, 'Twilio callback could not reach the call workflow');
      }
    }
  };

  async function answerInbound(form: Form): Promise<string> {
    const { CallSid: callSid, To: to, From: from } = form;
    if (!callSid || !to) {
      logger.warn({ callSid, to }, 'inbound voice webhook without CallSid or To');
      return sayAndHangUp(SPOKEN.notInService);
    }
    const [route] = await lookup<PhoneRoute>('select * from parley_phone_route(?)', to);
    if (!route) {
      logger.info({ callSid, to }, 'inbound call to a number no tenant has registered');
      return sayAndHangUp(SPOKEN.notInService);
    }
    const tenantId = route.tenant_id;
    const refusal =
      route.tenant_status !== 'active'
        ? `the tenant is ${route.tenant_status}`
        : !route.agent_id
          ? 'the number has no agent assigned'
          : !route.agent_version_id
            ? 'the agent has no published version'
            : undefined;
    if (refusal || !route.agent_id) {
      logger.warn(
        { callSid, tenantId, phoneNumberId: route.phone_number_id, reason: refusal },
        'inbound call not taken',
      );
      return sayAndHangUp(SPOKEN.unavailable);
    }

    const callId = callIdForCallSid(callSid);
    const workflowId = callWorkflowId(callSid);
    const input: CallWorkflowInput = {
      callId,
      tenantId,
      agentId: route.agent_id,
      agentVersionId: route.agent_version_id,
      direction: 'inbound',
      channel: 'voice',
      from,
      to,
      providerCallSid: callSid,
      timeZone: route.tenant_time_zone,
    };
    const limit = concurrentCallLimit(route.tenant_plan, route.tenant_settings);
    const admission = await withTenant(orm, tenantId, (em) =>
      admitCall(em, { ...input, id: callId, workflowId }, { limit, recordRejection: true }),
    );
    if (admission.outcome === 'rejected') {
      logger.info(
        { callSid, tenantId, limit, live: admission.live, reason: admission.reason },
        admission.reason === 'concurrency_limit'
          ? 'inbound call over the concurrency limit'
          : `inbound call refused: ${admission.reason}`,
      );
      return sayAndHangUp(admission.reason === 'concurrency_limit' ? SPOKEN.busy : SPOKEN.unavailable);
    }
    if (admission.outcome === 'existing' && FINAL_CALL_STATUSES.includes(admission.status as CallStatus)) {
      // A retry of a webhook whose call was already refused or has ended: the same answer again.
      const busy = admission.status === 'rejected' && admission.endReason === 'concurrency_limit';
      return sayAndHangUp(busy ? SPOKEN.busy : SPOKEN.unavailable);
    }

    try {
      await withinDeadline((workflow) =>
        workflow.start(CALL_WORKFLOW, {
          ...callStartOptions(workflowId, input),
          // A retried webhook finds the running workflow; one that already ended is not run twice.
          workflowIdConflictPolicy: 'USE_EXISTING',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        }),
      );
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        logger.warn({ callSid, tenantId }, 'voice webhook for a call whose workflow has already ended');
        return sayAndHangUp(SPOKEN.unavailable);
      }
      const reason = `the call workflow could not be started: ${err instanceof Error ? err.message : String(err)}`;
      logger.error({ err, callSid, tenantId, callId }, 'inbound call failed: Temporal unreachable');
      await withTenant(orm, tenantId, (em) => markCallFailed(em, callId, reason));
      return sayAndHangUp(SPOKEN.apology);
    }
    return streamTwiml({ callId, tenantId, workflowId, callSid });
  }

  /** An outbound call was answered: its workflow (started when it was placed) gets the audio. */
  async function answerOutbound(form: Form, callId: string | undefined): Promise<string> {
    const callSid = form.CallSid;
    const [call] = !callSid
      ? []
      : callId
        ? await lookup<ProviderCall>('select * from parley_call_by_id(?)', callId)
        : await lookup<ProviderCall>('select * from parley_call_by_provider_sid(?)', callSid);
    if (
      !callSid ||
      !call ||
      FINAL_CALL_STATUSES.includes(call.status as CallStatus) ||
      (call.provider_call_sid && call.provider_call_sid !== callSid)
    ) {
      logger.warn(
        { callSid, callId, status: call?.status },
        'outbound call answered with no live call record',
      );
      return sayAndHangUp(SPOKEN.notInService);
    }
    if (!call.provider_call_sid) {
      // Answered before the dialer wrote the CallSid down (it crashed, or is slow): write it here.
      await withTenant(orm, call.tenant_id, (em) =>
        em.execute('update calls set provider_call_sid = ? where id = ? and provider_call_sid is null', [
          callSid,
          call.call_id,
        ]),
      );
    }
    try {
      await withinDeadline((workflow) =>
        workflow.getHandle(call.workflow_id).signal(callStatusSignal, { status: 'in-progress', callSid }),
      );
    } catch (err) {
      logger.warn(
        { err, callSid, workflowId: call.workflow_id },
        'answered outbound call: workflow unreachable',
      );
      return sayAndHangUp(err instanceof WorkflowNotFoundError ? SPOKEN.unavailable : SPOKEN.apology);
    }
    return streamTwiml({
      callId: call.call_id,
      tenantId: call.tenant_id,
      workflowId: call.workflow_id,
      callSid,
    });
  }

  router.post('/voice', async (req, res) => {
    const started = performance.now();
    const form = formOf(req);
    let twiml: string;
    try {
      if (form.Direction === 'inbound') twiml = await answerInbound(form);
      else if (form.Direction === 'outbound-api' || form.Direction === 'outbound-dial')
        twiml = await answerOutbound(form, callIdOf(req));
      else {
        logger.warn(
          { callSid: form.CallSid, direction: form.Direction },
          'voice webhook with an unknown Direction',
        );
        twiml = sayAndHangUp(SPOKEN.notInService);
      }
    } catch (err) {
      logger.error({ err, callSid: form.CallSid }, 'voice webhook failed');
      twiml = sayAndHangUp(SPOKEN.apology);
    }
    res.status(200).type('text/xml').send(twiml);
    logger.debug({ callSid: form.CallSid, ms: performance.now() - started }, 'voice webhook answered');
  });

  router.post('/status', async (req, res) => {
    const form = formOf(req);
    const status = CALL_STATUSES[form.CallStatus ?? ''];
    if (form.CallSid && status) {
      const duration = Number(form.CallDuration);
      const durationSeconds = form.CallDuration && Number.isFinite(duration) ? duration : undefined;
      const callSid = form.CallSid;
      await signalCall(
        callSid,
        (workflowId) =>
          temporal.workflow
            .getHandle(workflowId)
            .signal(callStatusSignal, { status, durationSeconds, callSid }),
        callIdOf(req),
      );
    } else {
      logger.debug({ callSid: form.CallSid, callStatus: form.CallStatus }, 'status callback ignored');
    }
    res.status(204).end();
  });

  router.post('/amd', async (req, res) => {
    const form = formOf(req);
    const answeredBy = form.AnsweredBy;
    if (form.CallSid && answeredBy) {
      await signalCall(
        form.CallSid,
        (workflowId) => temporal.workflow.getHandle(workflowId).signal(answeredBySignal, { answeredBy }),
        callIdOf(req),
      );
    }
    res.status(204).end();
  });

  router.post('/stream-status', async (req, res) => {
    const form = formOf(req);
    const event = form.StreamEvent;
    logger.info(
      { callSid: form.CallSid, streamSid: form.StreamSid, event, error: form.StreamError },
      'media stream status',
    );
    if (event === 'stream-error' && form.CallSid) {
      const reason = `media stream error: ${form.StreamError ?? 'unknown'}`;
      await signalCall(form.CallSid, (workflowId) =>
        temporal.workflow.getHandle(workflowId).signal(hangupSignal, { reason }),
      );
    }
    res.status(204).end();
  });

  return router;
}
