// Why a read failed: the kinds of failure, the Engine API's error answers
// and their classification, each with what the operator should do.

package swarm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-json-experiment/json"
	"github.com/moby/moby/client"
)

// Kind classifies why a read failed, so that the exporter logs one line per
// change of kind and says what to do about it.
type Kind string

const (
	KindUnreachable Kind = "unreachable"     // no connection to the daemon
	KindTimeout     Kind = "timeout"         // the daemon did not answer in time
	KindTLS         Kind = "tls"             // TLS handshake or certificate problem
	KindAPIVersion  Kind = "api_version"     // the daemon and the exporter share no API version
	KindNotInSwarm  Kind = "not_in_swarm"    // the daemon is not part of a swarm
	KindNotManager  Kind = "not_manager"     // the daemon is a worker
	KindLocked      Kind = "locked"          // the manager is locked (autolock)
	KindSwarmState  Kind = "swarm_state"     // the node is pending or in error
	KindElection    Kind = "leader_election" // no leader yet, shortly after one was seen
	KindDecode      Kind = "decode"          // a response could not be decoded
	KindAPI         Kind = "api_error"       // any other error answer
)

// Error is a failed read, with advice for the operator.
type Error struct {
	Kind     Kind
	Endpoint string // the request that failed, when one did
	Err      error
	Hint     string // what to do
}

func (e *Error) Error() string {
	if e.Endpoint != "" {
		return fmt.Sprintf("%s: %v", e.Endpoint, e.Err)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// APIError is an error answer from the Engine API.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("Docker API answered %d: %s", e.StatusCode, e.Message)
}

// apiError reads the error answer of a request: Docker's {"message": …},
// else the body as it is.
func apiError(status int, body io.Reader) error {
	raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var msg struct{ Message string }
	if json.Unmarshal(raw, &msg) != nil || msg.Message == "" {
		msg.Message = string(raw)
	}
	return &APIError{StatusCode: status, Message: msg.Message}
}

// Messages the daemon answers when it cannot serve cluster state. Docker
// has used these texts since swarm mode exists; they carry no error code of
// their own (the first comes with HTTP 500, the others with 503).
const (
	msgNoLeader   = "does not have a leader"
	msgNotManager = "not a swarm manager"
	msgLocked     = "needs to be unlocked"
)

// A daemon refuses a request whose API version is outside its range with
// HTTP 400 and "client version 1.41 is too old. Minimum supported API
// version is 1.44, please upgrade your client to a newer version" (or "is
// too new. Maximum supported API version is 1.54"): 20.10 and 29 alike. The
// exporter negotiates a version within the range unless DOCKER_API_VERSION
// pins one, so "too old" is a pinned version below the daemon's minimum
// (Docker 29.0 refused versions below 1.44, later releases do when
// DOCKER_MIN_API_VERSION raises it) or a daemon whose minimum is above
// every version the exporter speaks, and "too new" a pinned version.
var versionRefusalRE = regexp.MustCompile(`client version (\S+) is too (old|new)\. (?:Minimum|Maximum) supported API version is ([0-9.]+)`)

func isVersionRefusal(ae *APIError) bool {
	return ae.StatusCode == http.StatusBadRequest && versionRefusalRE.MatchString(ae.Message)
}

// versionHint says what to do about a refused API version.
func versionHint(msg string) string {
	m := versionRefusalRE.FindStringSubmatch(msg)
	if m == nil {
		return "set DOCKER_API_VERSION to a version the daemon serves, or unset it"
	}
	asked, side, limit := m[1], m[2], m[3]
	pinned := strings.TrimSpace(os.Getenv(client.EnvOverrideAPIVersion))
	switch {
	case pinned != "" && side == "old":
		return "DOCKER_API_VERSION=" + pinned + " is older than the daemon's minimum API version " + limit +
			": unset DOCKER_API_VERSION (the exporter then negotiates the daemon's version) or set it to " + limit + " or newer"
	case pinned != "":
		return "DOCKER_API_VERSION=" + pinned + " is newer than the daemon's API version " + limit +
			": unset DOCKER_API_VERSION (the exporter then negotiates the daemon's version) or set it to " + limit + " or older"
	case side == "old":
		return "the daemon's minimum API version " + limit + " is newer than every version this swarm_exporter speaks (up to " + asked +
			"): upgrade swarm_exporter, or lower the daemon's minimum with DOCKER_MIN_API_VERSION"
	}
	return "the daemon refused API version " + asked + ": report this with the daemon's version"
}

func isNoLeader(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && strings.Contains(ae.Message, msgNoLeader)
}

// classify turns a request error into an *Error with advice. host is the
// daemon address, for the messages.
func classify(endpoint, host string, err error) *Error {
	e := &Error{Endpoint: endpoint, Err: err}
	var (
		ae      *APIError
		de      *DecodeError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		alert   tls.AlertError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Kind = KindTimeout
		e.Hint = "the Docker daemon at " + host + " did not answer in time: check its load, or raise --docker.timeout and Prometheus's scrape_timeout"
	case errors.As(err, &ae):
		switch {
		case isVersionRefusal(ae):
			e.Kind = KindAPIVersion
			e.Hint = versionHint(ae.Message)
		case strings.Contains(ae.Message, msgLocked):
			e.Kind = KindLocked
			e.Hint = "the swarm manager is locked: run `docker swarm unlock` on it with the unlock key"
		case strings.Contains(ae.Message, msgNotManager):
			e.Kind = KindNotManager
			e.Hint = "this node cannot read cluster state: run the exporter against a swarm manager (deploy it with the constraint node.role == manager)"
		default:
			e.Kind = KindAPI
			e.Hint = "the Docker API refused the request; see the message"
		}
	case errors.As(err, &de):
		e.Kind = KindDecode
		e.Hint = "the Docker API sent a response the exporter could not decode; please report it with the daemon's version"
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr),
		errors.As(err, &alert), errors.As(err, &recErr), strings.Contains(err.Error(), "tls:"):
		e.Kind = KindTLS
		e.Hint = "TLS with the Docker daemon at " + host + " failed: check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), DOCKER_TLS_VERIFY and that the daemon trusts the client certificate"
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT):
		e.Kind = KindUnreachable
		e.Hint = "no Docker socket at " + host + ": mount /var/run/docker.sock into the exporter's container, or set --docker.host / DOCKER_HOST"
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		e.Kind = KindUnreachable
		e.Hint = "permission denied on " + host + ": run the exporter with the Docker socket's group (--group-add), or reach the daemon through a read-only socket proxy"
	default:
		e.Kind = KindUnreachable
		e.Hint = "cannot reach the Docker daemon at " + host + ": check that it runs and that --docker.host / DOCKER_HOST points to it"
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stateError explains an /info answer whose local node cannot read the
// cluster, or nil when it can.
func stateError(info *Info) *Error {
	switch {
	case info.LocalNodeState == LocalLocked:
		return &Error{Kind: KindLocked, Err: errors.New("the swarm manager " + info.Name + " is locked"),
			Hint: "run `docker swarm unlock` on node " + info.Name + " with the swarm's unlock key"}
	case info.LocalNodeState == LocalInactive:
		return &Error{Kind: KindNotInSwarm, Err: errors.New("the Docker engine " + info.Name + " is not part of a swarm"),
			Hint: "point the exporter at a manager of the swarm to watch (--docker.host), or create one with `docker swarm init`"}
	case info.LocalNodeState == LocalPending || info.LocalNodeState == LocalError:
		msg := "the node " + info.Name + " is in swarm state " + info.LocalNodeState.String()
		if info.Error != "" {
			msg += ": " + info.Error
		}
		return &Error{Kind: KindSwarmState, Err: errors.New(msg),
			Hint: "the node has not (re)joined its swarm; check `docker info` and the daemon's logs on " + info.Name}
	case !info.ControlAvailable:
		return &Error{Kind: KindNotManager, Err: errors.New("node " + info.Name + " is a swarm worker, and workers cannot read cluster state"),
			Hint: "deploy the exporter on a manager node (constraint node.role == manager) or point --docker.host at a manager"}
	}
	return nil
}

// classifyVersion recognises the Docker client's refusal of a daemon older
// than the client's minimum API version.
func classifyVersion(err error) *Error {
	if err == nil || !strings.Contains(err.Error(), "is not supported by this client") {
		return nil
	}
	return &Error{Kind: KindAPIVersion, Err: err,
		Hint: "swarm_exporter needs Engine API " + MinAPIVersion + " (Docker 20.10) or newer: upgrade Docker"}
}
