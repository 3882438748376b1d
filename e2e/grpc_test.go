package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC tests run a hand-registered service (no generated code) on an
// h2c-only upstream in the test process, put cutover in front of it with a
// TLS listener and `upstream.protocol: h2c`, and call it with a real gRPC
// client over HTTP/2 + TLS:
//
//	grpc client --h2/TLS--> cutover serve --h2c--> grpc.Server (ServeHTTP)
const (
	grpcHost         = "grpc.test"
	grpcService      = "cutover.e2e.Records"
	grpcLookup       = "/" + grpcService + "/Lookup"
	grpcCount        = "/" + grpcService + "/Count"
	grpcTrailerKey   = "x-records-served-by"
	grpcTrailerValue = "h2c-upstream"
	grpcHeaderKey    = "x-records-header"
	// grpcMissingMessage has quotes and non-ASCII text, which gRPC
	// percent-encodes in grpc-message: it must reach the client as sent.
	grpcMissingMessage = `no record named "missing" (ünïcödé ✓, 100%)`
	// grpcAckWait bounds how long the streaming handler waits for the
	// client to acknowledge one message before it gives up on the stream.
	grpcAckWait = 5 * time.Second
)

// recordsServer implements the Records service. Lookup answers "known"
// and fails every other name with NotFound; Count streams n messages and
// sends message i+1 only once the client has acknowledged message i on
// acks, so a proxy that holds streamed messages back fails the call.
type recordsServer struct {
	acks chan int
}

func (s *recordsServer) lookup(ctx context.Context, name string) (*wrapperspb.StringValue, error) {
	if err := grpc.SetHeader(ctx, metadata.Pairs(grpcHeaderKey, "lookup")); err != nil {
		return nil, err
	}
	if err := grpc.SetTrailer(ctx, metadata.Pairs(grpcTrailerKey, grpcTrailerValue)); err != nil {
		return nil, err
	}
	if name != "known" {
		return nil, status.Error(codes.NotFound, grpcMissingMessage)
	}
	return wrapperspb.String("record " + name), nil
}

func (s *recordsServer) count(n uint32, stream grpc.ServerStream) error {
	stream.SetTrailer(metadata.Pairs(grpcTrailerKey, grpcTrailerValue))
	for i := 1; i <= int(n); i++ {
		if err := stream.SendMsg(wrapperspb.String(fmt.Sprintf("message %d", i))); err != nil {
			return err
		}
		select {
		case got := <-s.acks:
			if got != i {
				return status.Errorf(codes.FailedPrecondition, "client acknowledged message %d, want %d", got, i)
			}
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-time.After(grpcAckWait):
			return status.Errorf(codes.DeadlineExceeded,
				"the client did not acknowledge message %d within %s: it was not delivered while the stream was open (a proxy buffering the stream?)", i, grpcAckWait)
		}
	}
	return nil
}

// recordsServiceDesc registers recordsServer by hand, with wrapperspb
// messages on gRPC's default proto codec.
var recordsServiceDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Lookup",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(*recordsServer).lookup(ctx, in.GetValue())
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(wrapperspb.UInt32Value)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			return srv.(*recordsServer).count(in.GetValue(), stream)
		},
	}},
}

// startGRPCUpstream serves the Records service over h2c only (no HTTP/1,
// no TLS), with /health beside it for cutover's health check, and returns
// its base URL.
func startGRPCUpstream(t *testing.T, rs *recordsServer) string {
	t.Helper()
	gs := grpc.NewServer()
	gs.RegisterService(&recordsServiceDesc, rs)
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	mux.Handle("/"+grpcService+"/", gs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		gs.Stop()
		_ = srv.Close()
	})
	return "http://" + l.Addr().String()
}

// writeGRPCCert writes a self-signed certificate for grpcHost into dir and
// returns its files and the certificate for the client to trust.
func writeGRPCCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: grpcHost},
		DNSNames:              []string{grpcHost},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "grpc.pem"), filepath.Join(dir, "grpc-key.pem")
	for path, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, cert
}

// grpcThroughCutover starts the upstream and cutover (TLS listener for
// grpcHost, h2c to the static upstream), waits until a call goes through
// and returns a client connection to cutover's listener.
func grpcThroughCutover(t *testing.T, rs *recordsServer) *grpc.ClientConn {
	t.Helper()
	upstream := startGRPCUpstream(t, rs)
	s := newSetup(t)
	certFile, keyFile, cert := writeGRPCCert(t, s.Dir)
	cfg := fmt.Sprintf(`admin: {listen: "%s"}
apps:
  - name: records
    listen: "%s"
    hosts: [%s]
    tls:
      certificates: [{certFile: "%s", keyFile: "%s"}]
    upstream: {protocol: h2c}
    target:
      static: {upstreams: ["%s"]}
    version: v1
    deployTimeout: 10s
    health: {path: /health, interval: 100ms}
`, s.Admin, s.Listen, grpcHost, certFile, keyFile, upstream)
	if err := os.WriteFile(s.configPath(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.serve(t)

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: grpcHost, MinVersion: tls.VersionTLS12})
	// The target is cutover's address; the authority (Host, SNI) is the
	// app's host, so no resolver needs to know grpc.test.
	conn, err := grpc.NewClient("passthrough:///"+s.Listen,
		grpc.WithTransportCredentials(creds), grpc.WithAuthority(grpcHost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	// The static upstream becomes ready after its first health check;
	// until then cutover answers with an error status.
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		last = conn.Invoke(ctx, grpcLookup, wrapperspb.String("known"), new(wrapperspb.StringValue))
		cancel()
		if last == nil {
			return conn
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no gRPC call went through cutover within 15s; last error: %v", last)
	return nil
}

func TestGRPCUnaryCallsThroughTLSListenerKeepTrailersAndStatus(t *testing.T) {
	conn := grpcThroughCutover(t, &recordsServer{})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	var header, trailer metadata.MD
	var p peer.Peer
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, grpcLookup, wrapperspb.String("known"), out,
		grpc.Header(&header), grpc.Trailer(&trailer), grpc.Peer(&p))
	if err != nil {
		t.Fatalf("Lookup(known) through cutover: %v", err)
	}
	if out.GetValue() != "record known" {
		t.Errorf("Lookup(known) = %q, want %q", out.GetValue(), "record known")
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); !ok || info.State.NegotiatedProtocol != "h2" {
		t.Errorf("client connection to cutover: auth %#v, want TLS with ALPN h2", p.AuthInfo)
	}
	if got := header.Get(grpcHeaderKey); len(got) != 1 || got[0] != "lookup" {
		t.Errorf("header %s = %q, want [lookup]", grpcHeaderKey, got)
	}
	if got := trailer.Get(grpcTrailerKey); len(got) != 1 || got[0] != grpcTrailerValue {
		t.Errorf("trailer %s = %q, want [%s] (trailers: %v)", grpcTrailerKey, got, grpcTrailerValue, trailer)
	}

	// A failed call has no message: its status and the custom trailer
	// travel in the trailers alone.
	trailer = nil
	err = conn.Invoke(ctx, grpcLookup, wrapperspb.String("missing"), new(wrapperspb.StringValue), grpc.Trailer(&trailer))
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.NotFound || st.Message() != grpcMissingMessage {
		t.Errorf("Lookup(missing) error = %v, want code NotFound with message %q", err, grpcMissingMessage)
	}
	if got := trailer.Get(grpcTrailerKey); len(got) != 1 || got[0] != grpcTrailerValue {
		t.Errorf("trailer %s of the failed call = %q, want [%s] (trailers: %v)", grpcTrailerKey, got, grpcTrailerValue, trailer)
	}
}

func TestGRPCServerStreamDeliversEachMessageBeforeTheNextIsSent(t *testing.T) {
	rs := &recordsServer{acks: make(chan int)}
	conn := grpcThroughCutover(t, rs)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	const n = 5
	desc := &grpc.StreamDesc{StreamName: "Count", ServerStreams: true}
	stream, err := conn.NewStream(ctx, desc, grpcCount)
	if err != nil {
		t.Fatalf("open Count stream through cutover: %v", err)
	}
	if err := stream.SendMsg(wrapperspb.UInt32(n)); err != nil {
		t.Fatalf("send Count request: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("close the send side of Count: %v", err)
	}
	// The server sends message i+1 only after this loop acknowledged
	// message i, so each one must arrive while the stream is still open.
	for i := 1; i <= n; i++ {
		msg := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(msg); err != nil {
			t.Fatalf("receive message %d of %d: %v", i, n, err)
		}
		if want := fmt.Sprintf("message %d", i); msg.GetValue() != want {
			t.Fatalf("message %d = %q, want %q", i, msg.GetValue(), want)
		}
		select {
		case rs.acks <- i:
		case <-ctx.Done():
			t.Fatalf("the server did not wait for the acknowledgement of message %d: %v", i, ctx.Err())
		}
	}
	err = stream.RecvMsg(new(wrapperspb.StringValue))
	if !errors.Is(err, io.EOF) {
		// io.EOF is how grpc-go reports a trailing grpc-status 0.
		t.Fatalf("after %d messages: %v, want the stream to end with status OK", n, err)
	}
	if got := stream.Trailer().Get(grpcTrailerKey); len(got) != 1 || got[0] != grpcTrailerValue {
		t.Errorf("trailer %s = %q, want [%s] (trailers: %v)", grpcTrailerKey, got, grpcTrailerValue, stream.Trailer())
	}
}
