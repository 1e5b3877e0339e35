# callkeeper in a container: the Graph calls API for bots in docker compose, CI services, k8s.
#   docker build -t callkeeper .
#   docker run --rm -p 4545:4545 -p 4546:4546 -v callkeeper-data:/data callkeeper
# How this file is checked without Docker: README, "Container".

# Build: compile TypeScript and pack the package exactly as npm would publish it.
FROM node:20-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json callkeeper.schema.json README.md LICENSE ./
COPY src ./src
COPY docs ./docs
RUN npm run build && npm pack --ignore-scripts && mkdir /pkg && tar -xzf callkeeper-*.tgz -C /pkg --strip-components=1 && cp package-lock.json /pkg/

# Production dependencies only, from the lock file (better-sqlite3 is compiled here when no
# prebuilt binary can be fetched; the compilers stay in this stage).
FROM node:20-slim AS deps
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /pkg ./
RUN npm pkg delete scripts.prepare && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production \
    CALLKEEPER_HOST=0.0.0.0 \
    CALLKEEPER_PORT=4545 \
    CALLKEEPER_HTTPS_PORT=4546 \
    CALLKEEPER_DATA=/data \
    XDG_STATE_HOME=/home/node/.local/state
WORKDIR /app
COPY --from=deps --chown=root:root /app ./
# The node image's unprivileged user owns only its data and its CA key directory.
RUN mkdir -p /data /home/node/.local/state && chown -R node:node /data /home/node/.local && chmod 0700 /data
USER node
VOLUME ["/data"]
EXPOSE 4545 4546
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.CALLKEEPER_PORT||4545)+'/_callkeeper/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve"]
