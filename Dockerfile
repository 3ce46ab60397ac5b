# syntax=docker/dockerfile:1
#
# The operator image: one binary on distroless/cc (glibc, libgcc, CA certificates; no shell, no
# package manager), running as uid 65532. Built for linux/amd64 and linux/arm64:
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t <image> .
#
# The binary is compiled on the build machine's own platform and cross-linked for the target, so an
# arm64 image does not compile under QEMU emulation. Builder and runtime are both Debian 12, so the
# binary asks for no newer glibc than the runtime has (.ci/check-image.sh checks the same on CI's
# own build).

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
ARG BUILDARCH
ARG TARGETARCH
# Debian's cross linkers; the native one has the same name, so one setting serves every host.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; gcc="gcc-x86-64-linux-gnu"; libc="libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu; gcc="gcc-aarch64-linux-gnu"; libc="libc6-dev-arm64-cross" ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH' (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "$gcc" "$libc"; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$triple"; \
    echo "$triple" > /rust-target
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=baton-operator-target-${TARGETARCH} \
    set -eu; \
    triple="$(cat /rust-target)"; \
    cargo build --release --locked --target "$triple" --bin baton-operator; \
    install -D -m 0755 "target/$triple/release/baton-operator" /out/baton-operator

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/conductorone/baton-operator
LABEL org.opencontainers.image.title="baton-operator" \
      org.opencontainers.image.description="Kubernetes operator that runs fleets of ConductorOne Baton connectors" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/baton-operator /usr/local/bin/baton-operator
# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/baton-operator"]
CMD ["run"]
