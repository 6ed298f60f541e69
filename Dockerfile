# Pilotlight images, one multi-stage file (Debian bookworm, the same meson
# build as ./pilotlight):
#   --target service   pl-<svc> for each service of services/list and pl-migrate
#                      (one image; the compose service picks the binary)
#   --target nginx     nginx + nchan + headers-more, the shared nginx/ config
#                      and the built web client
# No key material or password is baked in: they come from volumes at run time.
# Plain Dockerfile syntax (no `# syntax=` line, no RUN --mount): it builds
# offline with Docker's classic builder, BuildKit and podman alike.
#
# Build argument: NODE_EXTRA_CA_CERTS, a CA bundle npm trusts besides node's
# own, for a network whose TLS is inspected by a proxy (the file must be in
# the build container: `podman build -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
# --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt`; scripts/containers.sh does so).

# ---- build: the C code ---------------------------------------------------------
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config \
      libfcgi-dev libjson-c-dev default-libmysqlclient-dev libsodium-dev libcurl4-openssl-dev liboath-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY libshared libshared
COPY services services
COPY tools tools
COPY tests/bench tests/bench
# the unit suite checks docs/configuration.md against the binaries and the
# defaults the runner and nginx write down
COPY docs/configuration.sh docs/configuration.md docs/
COPY scripts/lib.sh scripts/
COPY nginx/defaults.env nginx/
RUN meson setup /build /src --buildtype=release \
 && ninja -C /build \
 && meson test -C /build --suite unit --print-errorlogs \
 && mkdir /out \
 && for svc in $(cat services/list); do cp "/build/services/$svc/pl-$svc" /out/; done \
 && cp /build/tools/pl-migrate /out/

# ---- web: the React client ------------------------------------------------------
# The lock file first, so that `npm ci` is redone only when it changes; then
# only what the Vite build reads.
FROM node:20-bookworm-slim AS web
ARG NODE_EXTRA_CA_CERTS=
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/index.html web/api-reference.html web/vite.config.js ./
COPY services/list /src/services/list
COPY web/public public
COPY web/src src
RUN npm run build && mkdir -p /out && cp -r dist/. /out/

# ---- service: the pools and pl-migrate ------------------------------------------
FROM debian:bookworm-slim AS service
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfcgi0ldbl libjson-c5 libmariadb3 libsodium23 libcurl4 liboath0 ca-certificates libfcgi-bin \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pilotlight \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pilotlight
COPY --from=build /out/ /usr/local/bin/
COPY migrations /usr/share/pilotlight/migrations
COPY services/list /usr/share/pilotlight/services/list
COPY docker/service.sh docker/healthcheck.sh docker/init-secrets.sh docker/migrate.sh docker/wait-migrations.sh /usr/local/bin/
USER pilotlight
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/service.sh"]

# ---- nginx ----------------------------------------------------------------------
FROM debian:bookworm-slim AS nginx
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nginx libnginx-mod-nchan libnginx-mod-http-headers-more-filter openssl curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
COPY nginx /usr/share/pilotlight/nginx
COPY services/list /usr/share/pilotlight/services/list
COPY --from=web /out /usr/share/pilotlight/web
# the OpenAPI document the build made, served at /api/openapi.json
COPY --from=build /build/tools/openapi/openapi.json /usr/share/pilotlight/openapi.json
EXPOSE 8080 8443 8081
ENTRYPOINT ["/bin/sh", "/usr/share/pilotlight/nginx/compose/entrypoint.sh"]
