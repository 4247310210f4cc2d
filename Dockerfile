# One image for every Parley process. The default command runs the api; docker-compose.yml runs the
# same image as `npm run worker`, `npm run relay`, `npm run migrate` and
# `npm run temporal:search-attributes`. TypeScript runs through tsx (a runtime dependency), so
# there is no compile step: the build stage type-checks, then drops the dev dependencies.
#
#   docker build -t parley .
#   docker run --env-file prod.env -p 3000:3000 parley            # api
#   docker run --env-file prod.env parley npm run worker           # worker

# --- deps: every npm package (dev ones too, for the type-check) ---------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# No native model runtime is downloaded at install time (nothing in the image needs it).
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    NPM_CONFIG_UPDATE_NOTIFIER=false
# `.npmrc*` copies the registry settings when the file exists and nothing otherwise.
COPY package.json package-lock.json .npmrc* ./
# `npm ci` would be stricter, but it insists on other platforms' optional binaries being listed in
# the lock file, which some registry mirrors omit; `npm install` honours the lock all the same.
RUN npm install --no-audit --no-fund

# --- build: type-check the sources, build the dashboard, then keep only the runtime dependencies -
# Vite, React, Playwright (Chromium driver), jest and the other dev/test packages stay in this
# stage: `npm prune --omit=dev` drops them, and the runtime stage copies only what runs.
FROM deps AS build
COPY . .
RUN npm run typecheck \
 && npm run build:dashboard \
 && test -f dashboard/dist/index.html \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: the image that runs ------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
# The local speech engines the relay uses when an agent picks the 'local' STT/TTS provider.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng pocketsphinx pocketsphinx-en-us \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data/recordings && chown node:node /data/recordings
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json ./
COPY --chown=node:node api ./api
COPY --chown=node:node activities ./activities
COPY --chown=node:node config ./config
COPY --chown=node:node contracts ./contracts
COPY --chown=node:node db ./db
COPY --chown=node:node lib ./lib
COPY --chown=node:node realtime-relay ./realtime-relay
COPY --chown=node:node scripts ./scripts
COPY --chown=node:node temporal-config ./temporal-config
COPY --chown=node:node workers ./workers
COPY --chown=node:node workflows ./workflows
# The api serves the built dashboard (dashboard/dist); its sources are not needed at run time.
COPY --from=build --chown=node:node /app/dashboard/dist ./dashboard/dist
COPY --chown=node:node dashboard/public ./dashboard/public
# The official image's unprivileged user (uid 1000); nothing below needs root.
USER node
# api (API_PORT) and relay (RELAY_PORT) defaults.
EXPOSE 3000 3001
# Liveness of the api; the compose file gives the relay its own check and disables it for the
# worker and the one-shot jobs (Kubernetes ignores HEALTHCHECK: deploy/ declares probes).
# Every process stops gracefully on SIGTERM: allow the api and worker 35 s and the relay 40 s
# (docker stop -t / stop_grace_period / terminationGracePeriodSeconds).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.API_PORT || 3000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["npm", "run", "api"]
