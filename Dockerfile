# Every service's image: built on homelab-base (scripts/build-base.sh), run on distroless.
# SERVICE names the service (a folder under services/); docker-compose.yml passes it:
#   docker build --build-arg SERVICE=pv-forecast --tag homelab/pv-forecast .
# Build context: the repository root.

# The recipe again: a base built before a manifest changed still gets a cached cook layer.
FROM homelab-base:latest AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM homelab-base:latest AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --workspace --recipe-path recipe.json
COPY . .
# All service binaries in one build, before SERVICE is read: the shared crate compiles
# once and every image reuses this layer. The release profile strips symbols.
RUN services="$(ls services)" \
    && cargo build --release --locked $(printf -- '-p %s ' $services) \
    && mkdir -p /out \
    && for service in $services; do cp "target/release/$service" /out/; done

FROM builder AS picked
ARG SERVICE
RUN test -x "/out/${SERVICE:-none}" \
        || { echo "SERVICE='${SERVICE:-}' is not a service; one of: $(ls /out | tr '\n' ' ')" >&2; exit 1; } \
    && mkdir -p /app-image/data /app-image/bin \
    && cp "/out/$SERVICE" "/app-image/bin/$SERVICE" \
    && ln -s "$SERVICE" /app-image/bin/service

# No shell in distroless: every command below is in JSON array form.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
# DATA_DIR must belong to nonroot; a named volume mounted here inherits this owner.
# (First: a later COPY into /app would not chown a folder that already exists.)
COPY --from=picked --chown=65532:65532 /app-image/data /app/data
# /app/<service> is the binary, /app/service links to it, so one ENTRYPOINT serves all.
COPY --from=picked /app-image/bin/ /app/
USER nonroot
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/app/service", "healthcheck"]
ENTRYPOINT ["/app/service"]
CMD ["run"]
