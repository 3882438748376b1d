# cutover's image: the static cmd/cutover binary on a distroless base, as
# user 65532 (deploy/kubernetes/40-deployment.yaml runs it so).
#   docker build --build-arg VERSION=v1 -t registry.example/cutover:v1 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/cutover/cutover/internal/cli.Version=${VERSION}" -o /out/cutover ./cmd/cutover

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cutover /usr/local/bin/cutover
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/cutover"]
CMD ["serve", "-c", "/etc/cutover/cutover.yaml", "--data-dir", "/var/lib/cutover"]
