# canaryctl as a small container image: the static musl binary the release builds (`cargo xtask dist`), on
# distroless's static base, which carries the CA certificates canaryctl's TLS needs and nothing else (no
# shell, no package manager), as a non-root user. The release workflow builds it for linux/amd64 and
# linux/arm64 from image/linux/<arch>/canaryctl:
#
#   docker run --rm -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN \
#     ghcr.io/your-org/canaryctl:0.1.0 status orders-api:live
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/canaryctl /usr/local/bin/canaryctl
ENTRYPOINT ["/usr/local/bin/canaryctl"]
