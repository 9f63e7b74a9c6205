package e2e

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The exporter's container image, as the real-swarm tests build it: the
// final stage of the repository's Dockerfile, FROM scratch, around the
// binary the suite built (no registry is reachable, so the distroless base
// cannot be pulled). Everything else of the final stage is kept, so the
// user, entrypoint, port and labels are the Dockerfile's by construction.

// imageDockerfilePath is the repository's Dockerfile, from the e2e package.
const imageDockerfilePath = "../Dockerfile"

// imageInstr is one logical Dockerfile instruction (continuation lines
// joined), with where it starts.
type imageInstr struct {
	Line    int    // 1-based line of its first physical line
	Keyword string // upper case: FROM, RUN, COPY, …
	Args    string // the rest, continuations joined with a space
	Raw     []string
}

// imageStage is one FROM … up to the next FROM.
type imageStage struct {
	From   imageInstr
	Name   string // the AS name, "" when none
	Instrs []imageInstr
}

// imageParseDockerfile splits a Dockerfile into the instructions before the
// first FROM (global ARGs) and its stages. It knows what this repository
// uses: comments, blank lines and backslash continuations (no heredocs, no
// escape directive).
func imageParseDockerfile(src string) (global []imageInstr, stages []imageStage, err error) {
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		in := imageInstr{Line: i + 1, Raw: []string{lines[i]}}
		text := l
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			text = strings.TrimSuffix(text, `\`)
			i++
			in.Raw = append(in.Raw, lines[i])
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue // a comment inside a continuation is dropped by docker
			}
			text += " " + next
		}
		kw, args, _ := strings.Cut(text, " ")
		in.Keyword, in.Args = strings.ToUpper(kw), strings.Join(strings.Fields(args), " ")
		if in.Keyword == "FROM" {
			st := imageStage{From: in}
			f := strings.Fields(in.Args)
			if n := len(f); n >= 3 && strings.EqualFold(f[n-2], "AS") {
				st.Name = f[n-1]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
		} else {
			stages[len(stages)-1].Instrs = append(stages[len(stages)-1].Instrs, in)
		}
	}
	if len(stages) == 0 {
		return nil, nil, errors.New("Dockerfile: no FROM")
	}
	return global, stages, nil
}

// imageScratchDockerfile derives the test image's Dockerfile from the
// repository's: the lines after the last FROM, that FROM replaced by
// `FROM scratch` and the one `COPY --from=…` replaced by a COPY of binary
// (a file of the build context) to the same destination. Every other line,
// comments included, is kept as it is.
func imageScratchDockerfile(src, binary string) (string, error) {
	_, stages, err := imageParseDockerfile(src)
	if err != nil {
		return "", err
	}
	final := stages[len(stages)-1]
	lines := strings.Split(src, "\n")
	out := []string{"FROM scratch"}
	copies := 0
	next := final.From.Line // 0-based index of the line after the FROM
	for _, in := range final.Instrs {
		// Lines between instructions (comments, blanks) are kept.
		out = append(out, lines[next:in.Line-1]...)
		next = in.Line - 1 + len(in.Raw)
		if in.Keyword == "COPY" && strings.Contains(in.Args, "--from=") {
			f := strings.Fields(in.Args)
			copies++
			out = append(out, "COPY "+binary+" "+f[len(f)-1])
			continue
		}
		out = append(out, in.Raw...)
	}
	out = append(out, lines[next:]...)
	if copies != 1 {
		return "", fmt.Errorf("Dockerfile: the final stage has %d COPY --from instructions, want exactly 1 (the binary)", copies)
	}
	return strings.Join(out, "\n"), nil
}

// imageWriteBuildContext writes a build context for the test image into dir:
// the exporter binary the suite built and the derived Dockerfile. It
// refuses a binary that is not static, since FROM scratch has no loader.
func imageWriteBuildContext(dir string) error {
	src, err := os.ReadFile(imageDockerfilePath)
	if err != nil {
		return err
	}
	if err := imageCheckStatic(exporterBin); err != nil {
		return err
	}
	df, err := imageScratchDockerfile(string(src), "swarm_exporter")
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(exporterBin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "swarm_exporter"), bin, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
}

// imageCheckStatic reports an error unless path is a statically linked ELF
// executable (no program interpreter, no shared libraries).
func imageCheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (has an ELF interpreter): build it with CGO_ENABLED=0", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", path, libs)
	}
	return nil
}

// imageConfig is the part of `docker image inspect` the tests check.
type imageConfig struct {
	User         string
	Entrypoint   []string
	Cmd          []string
	ExposedPorts map[string]struct{}
	Labels       map[string]string
}

// imageInspectConfig decodes `docker image inspect --format '{{json .Config}}'`.
func imageInspectConfig(out string) (imageConfig, error) {
	var c imageConfig
	err := json.Unmarshal([]byte(out), &c)
	return c, err
}

// imageOCILabels are the labels the final stage must set.
var imageOCILabels = []string{
	"org.opencontainers.image.title",
	"org.opencontainers.image.description",
	"org.opencontainers.image.version",
	"org.opencontainers.image.revision",
	"org.opencontainers.image.source",
}

// imageCheckConfig checks what the image promises its users: a non-root
// user with a numeric uid (there is no /etc/passwd FROM scratch or in
// distroless to resolve names), the exporter as entrypoint, port 9675 and
// the OCI labels.
func imageCheckConfig(c imageConfig) []string {
	var errs []string
	if uid, _, _ := strings.Cut(c.User, ":"); uid == "" || uid == "0" || uid == "root" {
		errs = append(errs, fmt.Sprintf("User %q: the image must not run as root", c.User))
	} else if _, err := strconv.Atoi(uid); err != nil {
		errs = append(errs, fmt.Sprintf("User %q: the uid must be numeric", c.User))
	}
	if strings.Join(c.Entrypoint, " ") != "/bin/swarm_exporter" {
		errs = append(errs, fmt.Sprintf("Entrypoint %q, want [/bin/swarm_exporter]", c.Entrypoint))
	}
	if _, ok := c.ExposedPorts["9675/tcp"]; !ok {
		errs = append(errs, fmt.Sprintf("ExposedPorts %v lacks 9675/tcp", c.ExposedPorts))
	}
	for _, l := range imageOCILabels {
		if c.Labels[l] == "" {
			errs = append(errs, "label "+l+" missing or empty")
		}
	}
	return errs
}

// TestImageDockerfile checks the repository's Dockerfile without building
// it (no registry, no swarm needed): the build stage makes a static,
// reproducible, versioned binary for the target platform, and the final
// stage runs it as non-root on port 9675 with the OCI labels. It also
// checks the FROM-scratch derivation the real-swarm tests run.
func TestImageDockerfile(t *testing.T) {
	src, err := os.ReadFile(imageDockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	_, stages, err := imageParseDockerfile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage Dockerfile (build, final), got %d stage(s)", len(stages))
	}
	final := stages[len(stages)-1]
	byName := map[string]*imageStage{}
	for i := range stages {
		if stages[i].Name != "" {
			byName[stages[i].Name] = &stages[i]
		}
	}

	// Final stage.
	var (
		user, entry, copyFrom string
		exposed, labels       []string
	)
	for _, in := range final.Instrs {
		switch in.Keyword {
		case "USER":
			user = in.Args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.Args)...)
		case "ENTRYPOINT":
			entry = in.Args
		case "LABEL":
			for _, m := range regexp.MustCompile(`([A-Za-z0-9._-]+)=("[^"]*"|\S+)`).FindAllStringSubmatch(in.Args, -1) {
				if strings.Trim(m[2], `"`) != "" {
					labels = append(labels, m[1])
				}
			}
		case "COPY":
			if strings.Contains(in.Args, "--from=") {
				copyFrom = in.Args
			}
		case "CMD":
			t.Errorf("final stage line %d: CMD %s: flags belong to the deployment (deploy/exporter.yml `command:`), not the image", in.Line, in.Args)
		}
	}
	cfg := imageConfig{User: user, ExposedPorts: map[string]struct{}{}, Labels: map[string]string{}}
	if err := json.Unmarshal([]byte(entry), &cfg.Entrypoint); err != nil {
		t.Errorf("ENTRYPOINT %s: want the exec (JSON) form, so that signals reach the exporter: %v", entry, err)
	}
	for _, p := range exposed {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for _, l := range labels {
		cfg.Labels[l] = "set"
	}
	for _, e := range imageCheckConfig(cfg) {
		t.Error("final stage: " + e)
	}
	if uid, gid, _ := strings.Cut(user, ":"); gid == "0" || uid == "0" {
		t.Errorf("final stage: USER %s: no root uid or gid", user)
	}

	// The binary comes from the build stage.
	m := regexp.MustCompile(`^--from=(\S+) (\S+) (\S+)$`).FindStringSubmatch(copyFrom)
	if m == nil {
		t.Fatalf("final stage: want `COPY --from=<build stage> <binary> /bin/swarm_exporter`, got %q", copyFrom)
	}
	build := byName[m[1]]
	if build == nil {
		t.Fatalf("final stage copies from %q, which is not a stage of the Dockerfile", m[1])
	}
	if m[3] != "/bin/swarm_exporter" {
		t.Errorf("the binary is copied to %s, but the entrypoint is /bin/swarm_exporter", m[3])
	}
	if !strings.Contains(build.From.Args, "--platform=$BUILDPLATFORM") {
		t.Errorf("build stage FROM %s: want --platform=$BUILDPLATFORM, so that multi-platform builds cross-compile instead of emulating", build.From.Args)
	}

	// Build stage: ARGs and the go build.
	args := map[string]bool{}
	var goBuild string
	for _, in := range build.Instrs {
		switch in.Keyword {
		case "ARG":
			name, _, _ := strings.Cut(in.Args, "=")
			args[name] = true
		case "RUN":
			if strings.Contains(in.Args, "go build") {
				goBuild = in.Args
			}
		}
	}
	for _, a := range []string{"TARGETOS", "TARGETARCH"} {
		if !args[a] {
			t.Errorf("build stage: ARG %s missing (buildx sets it per platform only when declared)", a)
		}
	}
	if goBuild == "" {
		t.Fatal("build stage: no RUN … go build")
	}
	for _, want := range []string{
		"CGO_ENABLED=0",
		"GOOS=$TARGETOS",
		"GOARCH=$TARGETARCH",
		"-trimpath",
		`-ldflags "$(sh scripts/ldflags.sh)"`, // the Makefile's too
		"-o " + m[2],
	} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("build stage: the go build lacks %q:\n%s", want, goBuild)
		}
	}
	// The build arguments reach scripts/ldflags.sh as environment
	// variables: it strips the binary and stamps their values.
	ldflags := exec.Command("sh", "../scripts/ldflags.sh")
	ldflags.Env = append(os.Environ(), "VERSION=v9.8.7", "REVISION=0123abc", "BRANCH=release-9.8", "BUILD_USER=docker")
	out, err := ldflags.Output()
	if err != nil {
		t.Fatalf("scripts/ldflags.sh: %v", err)
	}
	for _, want := range []string{
		"-X github.com/prometheus/common/version.Version=v9.8.7",
		"-X github.com/prometheus/common/version.Revision=0123abc",
		"-X github.com/prometheus/common/version.Branch=release-9.8",
		"-X github.com/prometheus/common/version.BuildUser=docker",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("scripts/ldflags.sh lacks %q: %s", want, out)
		}
	}
	if !strings.HasPrefix(string(out), "-s -w ") {
		t.Errorf("scripts/ldflags.sh: want \"-s -w …\" (stripped binary): %s", out)
	}
	for _, a := range []string{"VERSION", "REVISION", "BRANCH"} {
		if !args[a] {
			t.Errorf("build stage: ARG %s missing; the ldflags would expand it empty", a)
		}
	}

	// The derivation the real-swarm tests build: FROM scratch, the binary
	// from the context, nothing else changed.
	df, err := imageScratchDockerfile(string(src), "swarm_exporter")
	if err != nil {
		t.Fatal(err)
	}
	_, dstages, err := imageParseDockerfile(df)
	if err != nil {
		t.Fatal(err)
	}
	if len(dstages) != 1 || dstages[0].From.Args != "scratch" {
		t.Fatalf("derived Dockerfile: want one stage FROM scratch:\n%s", df)
	}
	if got, want := len(dstages[0].Instrs), len(final.Instrs); got != want {
		t.Errorf("derived Dockerfile has %d instructions, the final stage %d:\n%s", got, want, df)
	}
	for i, in := range dstages[0].Instrs {
		orig := final.Instrs[i]
		if orig.Keyword == "COPY" && strings.Contains(orig.Args, "--from=") {
			if in.Args != "swarm_exporter /bin/swarm_exporter" {
				t.Errorf("derived COPY: %q", in.Args)
			}
			continue
		}
		if in.Keyword != orig.Keyword || in.Args != orig.Args {
			t.Errorf("derived instruction %d: %s %s, want %s %s", i, in.Keyword, in.Args, orig.Keyword, orig.Args)
		}
	}
	t.Logf("derived test image Dockerfile:\n%s", df)
}

// TestImageScratchDerivation checks the derivation on small Dockerfiles:
// only the FROM and the COPY --from change, continuation lines and
// comments stay, and an ambiguous final stage is refused.
func TestImageScratchDerivation(t *testing.T) {
	src := "ARG X=1\nFROM golang AS build\nRUN go build \\\n  -o /out/x .\n\nFROM base:tag\n# keep me\nLABEL a=\"1\" \\\n      b=\"2\"\nCOPY --from=build /out/x /bin/x\nUSER 1:1\nENTRYPOINT [\"/bin/x\"]\n"
	got, err := imageScratchDockerfile(src, "x")
	if err != nil {
		t.Fatal(err)
	}
	want := "FROM scratch\n# keep me\nLABEL a=\"1\" \\\n      b=\"2\"\nCOPY x /bin/x\nUSER 1:1\nENTRYPOINT [\"/bin/x\"]\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []string{
		"FROM a AS build\nFROM b\nCOPY x /bin/x\n",
		"FROM a AS build\nFROM b\nCOPY --from=build /x /x\nCOPY --from=build /y /y\n",
	} {
		if _, err := imageScratchDockerfile(bad, "x"); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
