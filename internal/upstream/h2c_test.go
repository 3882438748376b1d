package upstream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcReplica serves gRPC's health service over h2c, with /healthz for the
// pool's health check beside it.
func grpcReplica(t *testing.T) *url.URL {
	t.Helper()
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "health check over "+r.Proto+", want HTTP/2", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.Handle("/", gs)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(gs.Stop)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGRPCCallsReachAnH2CEndpointWithTrailers(t *testing.T) {
	p := NewPool([]*url.URL{grpcReplica(t)}, Options{Health: fastHealth, Protocol: ProtocolH2C,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	p.Start(t.Context())
	t.Cleanup(p.Close)
	waitAllReady(t, p)
	srv := front(t, p)

	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(srv.URL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	client := healthpb.NewHealthClient(conn)

	// A gRPC answer's status travels in trailers: without them the call
	// fails even when the body arrived.
	res, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Check through the pool: %v", err)
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status = %v, want SERVING", res.GetStatus())
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Check of an unknown service: %v, want code NotFound", err)
	}
	waitIdle(t, p)
}
