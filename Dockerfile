# syntax=docker/dockerfile:1
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/deskrelay . \
 && mkdir -p /out/spool

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/deskrelay /usr/local/bin/deskrelay
# The spool must be writable by the nonroot user the image runs as; a named
# volume mounted here takes this directory's owner.
COPY --from=build --chown=nonroot:nonroot /out/spool /var/lib/deskrelay/spool
WORKDIR /var/lib/deskrelay
# The inbound spool (verified webhooks waiting for Redis) lives here: keep it on a volume.
VOLUME ["/var/lib/deskrelay/spool"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/deskrelay"]
CMD ["serve"]
