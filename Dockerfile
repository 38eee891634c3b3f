# Dockerfile: hydrant's container image, in two stages.
#
#   build    Debian 12 with the packages tools/dev installs for building; compiles a Release hydrant and lays out the
#            runtime root filesystem with tools/rootfs (the binary, its ldd closure with the loader, libpq.so.5 and its
#            closure (loaded with dlopen), CA certificates, passwd/group for user 10001, /etc/hydrant/hydrant.yaml =
#            conf/kubernetes.yaml, the migrations)
#   runtime  FROM scratch holding exactly that tree: no shell, no package manager; runs as 10001:10001 and writes
#            nothing, so it runs with a read-only root filesystem
#
# Build with tools/image (docker when an engine answers, else buildah; offline it makes the Debian base with
# mmdebstrap and passes --build-arg BASE=localhost/debian:bookworm-slim). By hand: docker build -t hydrant .
# Run: docker run --read-only -p 8080:8080 -e DB_HOST=... -e DB_USER=... -e DB_PASSWORD=... \
#        -v "$PWD/tls:/etc/hydrant-tls:ro" hydrant
# Deploy: docs/kubernetes.md.

ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config ca-certificates \
        libh2o-evloop-dev libyaml-dev libyajl-dev libpq-dev libssl-dev check \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY app/ app/
COPY h2o-handlers/ h2o-handlers/
COPY tests/unit/ tests/unit/
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release >/dev/null \
 && cmake --build /build -j"$(nproc)" --target hydrant \
 && /build/hydrant version
COPY conf/kubernetes.yaml conf/kubernetes.yaml
COPY conf/migrations/ conf/migrations/
COPY tools/rootfs tools/rootfs
RUN tools/rootfs /build/hydrant /rootfs

FROM scratch AS runtime
COPY --from=build /rootfs/ /
USER 10001:10001
# 8080: HTTP/1.1 and h2c; 8443: TLS (h2, HTTP/1.1); 9090: admin (metrics, status, health, ready)
EXPOSE 8080 8443 9090
ENTRYPOINT ["/hydrant", "serve"]
CMD ["-c", "/etc/hydrant/hydrant.yaml"]
LABEL org.opencontainers.image.title="hydrant" \
      org.opencontainers.image.description="An HTTP/2 application server in C on libh2o"
