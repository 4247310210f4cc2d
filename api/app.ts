/**
 * The Express 5 application: health, Twilio's webhooks, the versioned REST API, its OpenAPI docs,
 * and the dashboard.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import { tagRequestSpan, traceRequests } from '../lib/tracing';
import { createAuthenticator } from './auth/authenticate';
import type { ApiDeps } from './deps';
import { errorMiddleware, notFoundRoute } from './errors';
import { buildOpenApiDocument } from './openapi';
import { ApiRouter, onAuthenticated } from './routing';
import { registerAgentRoutes } from './routes/agents';
import { registerApiKeyRoutes } from './routes/api-keys';
import { registerAuthRoutes } from './routes/auth';
import { createStripeWebhookRouter, registerBillingRoutes } from './routes/billing';
import { registerAnalyticsRoutes } from './routes/analytics';
import { registerAuditLogRoutes } from './routes/audit-log';
import { registerPrivacyRoutes } from './routes/privacy';
import { installMetrics, routeOf } from './metrics';
import { installSecurity } from './security';
import { registerCallRoutes } from './routes/calls';
import { CAMPAIGN_CREATE_BODY_LIMIT, registerCampaignRoutes } from './routes/campaigns';
import { documentContactImports, registerContactRoutes } from './routes/contacts';
import { registerConversationRoutes } from './routes/conversations';
import { registerDoNotCallRoutes } from './routes/do-not-call';
import { registerHealthRoutes } from './routes/health';
import { registerIntegrationRoutes } from './routes/integrations';
import { registerPhoneNumberRoutes } from './routes/phone-numbers';
import { registerTestCallRoutes } from './routes/test-calls';
import { createTwilioWebhookRouter } from './routes/twilio-webhooks';
import { registerUserRoutes } from './routes/users';
import { registerWebhookEndpointRoutes } from './routes/webhook-endpoints';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const VERSION: string = (require('../package.json') as { version: string }).version;

const REQUEST_TENANT = 'parley.requestTenant';
const DASHBOARD_DIR = path.resolve(__dirname, '../dashboard');

export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, linklocal, uniquelocal');
  app.use(traceRequests(routeOf));
  installMetrics(app, deps);
  installSecurity(app, deps);

  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      deps.logger.debug(
        {
          method: req.method,
          path: req.path,
          route: routeOf(req),
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
          tenantId: res.locals[REQUEST_TENANT] as string | undefined,
        },
        'request',
      );
    });
    next();
  });
  // The request's log line and trace span name the tenant once its caller is known.
  onAuthenticated(app, (auth, _req, res) => {
    res.locals[REQUEST_TENANT] = auth.tenantId;
    tagRequestSpan({ 'parley.tenant.id': auth.tenantId });
    return Promise.resolve();
  });
  // Stripe signs the raw bytes: its webhook reads the body itself, before any JSON parsing.
  app.use('/stripe', createStripeWebhookRouter(deps));
  // A campaign may bring its contacts as an inline CSV (up to 5 MB): its own, larger body limit.
  app.post('/v1/campaigns', express.json({ limit: CAMPAIGN_CREATE_BODY_LIMIT }));
  app.use(express.json({ limit: deps.config.API_BODY_LIMIT }));

  registerHealthRoutes(app, deps, VERSION);
  // Twilio posts forms and reads TwiML; its errors (bad signature) still use the JSON error shape.
  app.use('/twilio', createTwilioWebhookRouter(deps));

  const api = new ApiRouter(createAuthenticator({ orm: deps.orm, jwtSecret: deps.config.JWT_SECRET }));
  registerAuthRoutes(api, deps);
  registerUserRoutes(api, deps);
  registerApiKeyRoutes(api, deps);
  registerWebhookEndpointRoutes(api, deps);
  registerAgentRoutes(api, deps);
  registerConversationRoutes(api, deps);
  registerCallRoutes(api, deps);
  registerPhoneNumberRoutes(api, deps);
  registerContactRoutes(api, deps);
  registerDoNotCallRoutes(api, deps);
  registerCampaignRoutes(api, deps);
  registerTestCallRoutes(api, deps);
  registerIntegrationRoutes(api, deps);
  registerBillingRoutes(api, deps);
  registerAnalyticsRoutes(api, deps);
  registerAuditLogRoutes(api, deps);
  registerPrivacyRoutes(api, deps);
  app.use(api.router);

  const openApi = buildOpenApiDocument(api.operations, {
    version: VERSION,
    serverUrl: deps.config.PUBLIC_BASE_URL,
  });
  documentContactImports(openApi);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApi, { customSiteTitle: 'Parley API' }));

  // The built dashboard (`npm run build:dashboard`; npm start and npm test build it on first use),
  // else the placeholder page. Its client-side routes (/agents/…, /calls/…) all load index.html.
  const built = path.join(DASHBOARD_DIR, 'dist');
  const dashboardDir = existsSync(path.join(built, 'index.html'))
    ? built
    : path.join(DASHBOARD_DIR, 'public');
  app.use(
    express.static(dashboardDir, {
      // Bundles carry a content hash in their names; the page itself must always be fresh.
      maxAge: '1y',
      immutable: true,
      setHeaders: (res, file) => {
        if (file.endsWith('.html')) res.setHeader('cache-control', 'no-cache');
      },
    }),
  );
  app.use(dashboardRoutes(path.join(dashboardDir, 'index.html')));

  app.use(notFoundRoute);
  app.use(errorMiddleware(deps.logger));
  return app;
}

/** Paths the dashboard never owns: an unknown API path stays a JSON 404. */
const NOT_DASHBOARD = /^\/(v1|twilio|stripe|docs|openapi\.json|health|metrics|assets)(\/|$)/;

/** A browser navigating to a dashboard page (GET for HTML) gets the app's index.html. */
function dashboardRoutes(indexFile: string): express.RequestHandler {
  return (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || NOT_DASHBOARD.test(req.path)) return next();
    if (!req.accepts('html')) return next();
    res.set('cache-control', 'no-cache');
    res.sendFile(indexFile, (err) => {
      if (err) next(err);
    });
  };
}
