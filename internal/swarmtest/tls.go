package swarmtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSMaterial is the run's throwaway PKI for TLS nodes. Every directory
// holds ca.pem, cert.pem and key.pem, the layout DOCKER_CERT_PATH expects.
type TLSMaterial struct {
	// Dir is the root of the material.
	Dir string
	// ClientDir is a valid client setup: ca.pem is the CA the daemons trust
	// and sign their server certificates with, cert.pem/key.pem a client
	// certificate it signed.
	ClientDir string
	// BadClientDir holds a client certificate signed by a second CA that no
	// daemon trusts; its ca.pem is the good CA, so the client accepts the
	// server and the daemon rejects the client during the handshake.
	// untrusted-ca.pem is that second CA.
	BadClientDir string
	// WrongCADir holds the valid client certificate but, as ca.pem, the
	// untrusted CA, so the client itself rejects the server certificate.
	WrongCADir string

	ca, badCA *issuer
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// Env returns DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH settings
// for reaching node over TLS with the certificates in certDir.
func (m *TLSMaterial) Env(n *Node, certDir string) []string {
	return []string{"DOCKER_HOST=" + n.TCPHost(), "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + certDir}
}

func (m *TLSMaterial) serverDir(node string) string { return filepath.Join(m.Dir, "server-"+node) }

var serial int64 = time.Now().UnixNano()

func newCert(tmpl *x509.Certificate, parent *issuer) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(7 * 24 * time.Hour)
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issuer{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func newCA(name string) (*issuer, error) {
	return newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
}

func writeCertDir(dir string, ca []byte, c *issuer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.pem":   ca,
		"cert.pem": c.pem,
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func newTLSMaterial(dir string, nodes []*Node) (*TLSMaterial, error) {
	m := &TLSMaterial{
		Dir:          dir,
		ClientDir:    filepath.Join(dir, "client"),
		BadClientDir: filepath.Join(dir, "client-untrusted"),
		WrongCADir:   filepath.Join(dir, "client-wrong-ca"),
	}
	var err error
	if m.ca, err = newCA("swarmtest CA"); err != nil {
		return nil, err
	}
	if m.badCA, err = newCA("swarmtest untrusted CA"); err != nil {
		return nil, err
	}
	client := func(parent *issuer) (*issuer, error) {
		return newCert(&x509.Certificate{
			Subject:     pkix.Name{CommonName: "swarmtest client"},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, parent)
	}
	good, err := client(m.ca)
	if err != nil {
		return nil, err
	}
	bad, err := client(m.badCA)
	if err != nil {
		return nil, err
	}
	if err := writeCertDir(m.ClientDir, m.ca.pem, good); err != nil {
		return nil, err
	}
	if err := writeCertDir(m.BadClientDir, m.ca.pem, bad); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(m.BadClientDir, "untrusted-ca.pem"), m.badCA.pem, 0o600); err != nil {
		return nil, err
	}
	if err := writeCertDir(m.WrongCADir, m.badCA.pem, good); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.TLS {
			if err := m.addServer(n); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// addServer writes the server certificate of a TLS node (valid for its IP,
// hostname, localhost and 127.0.0.1).
func (m *TLSMaterial) addServer(n *Node) error {
	c, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: n.Hostname},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{n.Hostname, "localhost"},
		IPAddresses: []net.IP{net.ParseIP(n.IP), net.ParseIP("127.0.0.1")},
	}, m.ca)
	if err != nil {
		return fmt.Errorf("swarmtest: server cert for %s: %w", n.Name, err)
	}
	return writeCertDir(m.serverDir(n.Name), m.ca.pem, c)
}

func (s *Swarm) ensureTLS(n *Node) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tls == nil {
		m, err := newTLSMaterial(filepath.Join(s.dir, "tls"), nil)
		if err != nil {
			return err
		}
		s.tls = m
	}
	return s.tls.addServer(n)
}
