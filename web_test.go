package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-exporter/swarm_exporter/internal/monitoring"
	"github.com/swarm-exporter/swarm_exporter/internal/testkit"
)

// testPKI is a throwaway CA and a server certificate it signed for the
// loopback address.
type testPKI struct {
	caPool            *x509.CertPool
	certPEM, keyPEM   []byte
	otherPool         *x509.CertPool // a CA that did not sign the server certificate
	serverCertSubject string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	ca, caKey := newCA("swarm_exporter test CA")
	other, _ := newCA("some other CA")

	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "swarm_exporter test server"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{caPool: x509.NewCertPool(), otherPool: x509.NewCertPool(), serverCertSubject: tmpl.Subject.CommonName}
	p.caPool.AddCert(ca)
	p.otherPool.AddCert(other)
	p.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return p
}

// The user the example web config (examples/web-config.yml) documents.
const (
	exampleUser     = "prometheus"
	examplePassword = "change-me-example-only"
)

// writeWebConfig writes examples/web-config.yml into dir with the test's
// certificate and key under the names it gives and, when hash is not empty,
// that bcrypt hash for its user; it returns the config's path.
func writeWebConfig(t *testing.T, dir string, pki *testPKI, hash string) string {
	t.Helper()
	example, err := os.ReadFile(filepath.Join("examples", "web-config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^\s+` + name + `:\s*(\S+)\s*$`).FindSubmatch(example)
		if m == nil {
			t.Fatalf("examples/web-config.yml has no %s", name)
		}
		return string(m[1])
	}
	if err := os.WriteFile(filepath.Join(dir, field("cert_file")), pki.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, field("key_file")), pki.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	config := example
	if hash != "" {
		re := regexp.MustCompile(`(?m)^(\s+` + exampleUser + `:\s*)\S+$`)
		config = re.ReplaceAllFunc(example, func(line []byte) []byte {
			return append(re.FindSubmatch(line)[1], hash...)
		})
		if bytes.Equal(config, example) {
			t.Fatalf("examples/web-config.yml has no user %s", exampleUser)
		}
	}
	path := filepath.Join(dir, "web-config.yml")
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExampleWebConfig: the example is valid as shipped, and its hash is
// that of the password its comment gives.
func TestExampleWebConfig(t *testing.T) {
	path := writeWebConfig(t, t.TempDir(), newTestPKI(t), "")
	if err := web.Validate(path); err != nil {
		t.Fatalf("examples/web-config.yml: %v", err)
	}
	example, _ := os.ReadFile(path)
	m := regexp.MustCompile(`(?m)^\s+` + exampleUser + `:\s*(\S+)\s*$`).FindSubmatch(example)
	if m == nil || bcrypt.CompareHashAndPassword(m[1], []byte(examplePassword)) != nil {
		t.Fatalf("the example's hash for %s is not that of %q", exampleUser, examplePassword)
	}
	if !strings.Contains(string(example), examplePassword) {
		t.Fatal("the example no longer says which password its hash is of")
	}
}

// TestMetricsOverTLSWithBasicAuth: with --web.config.file, the exporter
// serves only over TLS, and only to the configured user.
func TestMetricsOverTLSWithBasicAuth(t *testing.T) {
	pki := newTestPKI(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret \"pass\" ☃"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	const password = "s3cret \"pass\" ☃"
	config := writeWebConfig(t, t.TempDir(), pki, string(hash))

	docker := fake(t, "healthy-3m2w")
	addr := monitoring.FreeAddr(t)
	var logs testkit.LockedBuffer
	go run([]string{"--web.listen-address=" + addr, "--web.config.file=" + config, "--docker.host=" + docker.Host}, io.Discard, &logs)

	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS12},
	}}
	base := "https://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := trusting.Get(base + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not serve TLS: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	type request struct {
		scheme, path, user, password string
	}
	do := func(r request) (int, string, http.Header, error) {
		req, err := http.NewRequest(http.MethodGet, r.scheme+"://"+addr+r.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.user != "" || r.password != "" {
			req.SetBasicAuth(r.user, r.password)
		}
		resp, err := trusting.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, nil
	}

	for _, path := range []string{"/metrics", "/api/v1/status", "/api/v1/status/cluster"} {
		// Plain HTTP: refused (Go's TLS server answers 400 to an HTTP
		// request), never the metrics or the status.
		code, body, _, err := do(request{"http", path, exampleUser, password})
		if err == nil && (code != http.StatusBadRequest || strings.Contains(body, "docker_swarm") || strings.Contains(body, "status_cluster")) {
			t.Errorf("http://%s: %d, want 400 (an HTTP request to an HTTPS server)\n%.500s", path, code, body)
		}

		for _, r := range []request{
			{"https", path, "", ""},                                 // no credentials
			{"https", path, exampleUser, "wrong"},                   // wrong password
			{"https", path, exampleUser, password + " "},            // almost the password
			{"https", path, "admin", password},                      // wrong user
			{"https", path, strings.ToUpper(exampleUser), password}, // user names are case-sensitive
		} {
			code, body, header, err := do(r)
			if err != nil {
				t.Fatalf("%+v: %v", r, err)
			}
			if code != http.StatusUnauthorized || strings.Contains(body, "docker_swarm") || strings.Contains(body, "status_cluster") {
				t.Errorf("%s as %q/%q: %d, want 401\n%s", path, r.user, r.password, code, body)
			}
			if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("%s as %q: no Basic challenge (WWW-Authenticate %q)", path, r.user, header.Get("WWW-Authenticate"))
			}
		}

		code, body, _, err = do(request{"https", path, exampleUser, password})
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s with the right credentials: %d %v\n%s", path, code, err, body)
		}
		want := map[string]string{"/metrics": "\ndocker_swarm_up 1\n", "/api/v1/status": `"status_cluster"`, "/api/v1/status/cluster": `"status": "OK"`}[path]
		if !strings.Contains(body, want) {
			t.Errorf("%s with the right credentials lacks %q:\n%.2000s", path, want, body)
		}
	}

	// The certificate served is the configured one: a client that does not
	// trust its CA refuses it.
	distrusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pki.otherPool},
	}}
	_, err = distrusting.Get(base + "/metrics")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client that does not trust the test CA: err = %v, want an unknown authority", err)
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.caPool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != pki.serverCertSubject {
		t.Errorf("served certificate %q, want %q", cn, pki.serverCertSubject)
	}
	// TLS below the configured minimum (1.2) is refused.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.caPool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}
