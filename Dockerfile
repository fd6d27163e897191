# The netlane relay as a container (docs/DEPLOY.md "The container").
#   docker build -t netlane-relay .
#   docker run -d --name relay -p 27100:27100/udp -p 127.0.0.1:9464:9464 \
#     -v netlane-relay:/var/lib/netlane -e NETLANE_TICKET_KEY=BASE64_TICKET_PUBLIC_KEY netlane-relay
# Every relay option is a NETLANE_* variable (`netlane relay --help`); arguments after the image name are
# `netlane relay` flags and win over the variables.

# ---- build: the package's dependencies from the lockfile, then tsc on src/ alone
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN printf '{ "extends": "./tsconfig.json", "include": ["src"] }\n' > tsconfig.build.json \
  && npx tsc -p tsconfig.build.json
# What runs: no dev dependencies; @redis/client (an optional peer, for --redis) at the version package.json names,
# installed beside the package (the lockfile holds it as a dev dependency, which --omit=dev leaves out).
RUN npm prune --omit=dev --no-audit --no-fund \
  && mkdir /redis && cd /redis && echo '{ "private": true }' > package.json \
  && npm install --omit=dev --no-audit --no-fund "@redis/client@$(node -p "require('/src/package.json').peerDependencies['@redis/client']")" \
  && cp -r node_modules/. /src/node_modules/

# ---- run: node, the built package, a non-root user
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    NETLANE_ADDRESS=0.0.0.0 \
    NETLANE_PORT=27100 \
    NETLANE_METRICS=0.0.0.0:9464 \
    NETLANE_KEY=/var/lib/netlane/relay.key
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The relay's X25519 key is made here on the first run and kept (a volume): its name survives restarts.
RUN mkdir -p /var/lib/netlane && chown node:node /var/lib/netlane
VOLUME /var/lib/netlane
USER node
EXPOSE 27100/udp 9464/tcp
# /health answers 200 while the relay runs and 503 once it drains (then the process exits).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.NETLANE_METRICS||'').split(':').pop();fetch('http://127.0.0.1:'+p+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains (clients are told the deadline and move); give `docker stop -t` more than NETLANE_DRAIN_SECONDS (10).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/netlane.js", "relay"]
