// referrers-registry: a test registry with the native OCI referrers API, for ocituf's tests.
//
// It serves go-containerregistry's pkg/registry (registry.New with WithReferrersSupport(true),
// from Debian trixie's golang-github-google-go-containerregistry-dev) and wraps it to fix its
// deviations from the OCI distribution spec 1.1:
//
//   - referrers descriptors carry artifactType (the manifest's artifactType, else its
//     config.mediaType) and the manifest's annotations (spec: "Listing Referrers");
//   - the artifactType query filter is applied and reported with OCI-Filters-Applied;
//   - a referrers request for a repository that does not exist yet answers 200 with an empty
//     index (the spec forbids 404 from a registry that supports the API);
//   - a manifest PUT whose manifest has a subject answers with the OCI-Subject header, and
//     every manifest PUT with Location;
//   - a manifest PUT by digest is refused (400 DIGEST_INVALID) when the body has another
//     digest, an unparsable body is refused (400 MANIFEST_INVALID), and a manifest over
//     -max-manifest-bytes is refused (413 MANIFEST_INVALID);
//   - DELETE of a manifest by digest also deletes the tags that point to it (as distribution
//     does);
//   - DELETE of a blob it does not have answers 404 BLOB_UNKNOWN (ggcr: 500);
//   - the tags list honours `last` (ggcr returns everything when no tag sorts after it) and
//     sends a Link header when `n` cut the list.
//
// Optionally referrers answers are paginated (-referrers-page-size) with a Link header, so
// clients' pagination code meets a real server.
//
// It listens only on a loopback address, prints "listening on ADDR" on stdout and stderr,
// exits by itself after -time-limit, and exits when its parent process dies. Manifests live
// in memory; blobs too unless -data-dir is given.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

const (
	ociIndex = "application/vnd.oci.image.index.v1+json"
	// Accept header used for the wrapper's own reads of manifests from the inner registry
	// (ggcr ignores it, but say what we mean).
	manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
)

var digestRe = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; must be a loopback IP (port 0 picks a free port)")
	timeLimit := flag.Duration("time-limit", 30*time.Minute, "exit after this long")
	dataDir := flag.String("data-dir", "", "keep blobs in this directory (default: in memory)")
	pageSize := flag.Int("referrers-page-size", 0, "paginate referrers answers with a Link header after this many descriptors (0: never)")
	maxManifest := flag.Int64("max-manifest-bytes", 4<<20, "largest manifest accepted on PUT")
	quiet := flag.Bool("quiet", false, "do not log requests")
	flag.Parse()

	logger := log.New(os.Stderr, "referrers-registry: ", log.LstdFlags|log.Lmicroseconds)
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		logger.Fatalf("bad -addr %q: %v", *addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		logger.Fatalf("refusing -addr %q: only loopback IP addresses are allowed", *addr)
	}
	if *timeLimit <= 0 {
		logger.Fatalf("-time-limit must be positive")
	}

	reqLog := logger
	if *quiet {
		reqLog = log.New(io.Discard, "", 0)
	}
	opts := []registry.Option{registry.WithReferrersSupport(true), registry.Logger(reqLog)}
	if *dataDir != "" {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			logger.Fatalf("creating -data-dir: %v", err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*dataDir)))
	}
	h := &fixer{inner: registry.New(opts...), pageSize: *pageSize, maxManifest: *maxManifest}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		logger.Fatalf("listen: %v", err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	logger.Printf("listening on %s (time limit %s)", ln.Addr(), *timeLimit)

	time.AfterFunc(*timeLimit, func() {
		logger.Printf("time limit %s reached, exiting", *timeLimit)
		os.Exit(0)
	})
	// Exit when the process that started us dies (we are then re-parented).
	parent := os.Getppid()
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != parent {
				logger.Printf("parent process %d is gone, exiting", parent)
				os.Exit(0)
			}
		}
	}()

	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	logger.Fatal(srv.Serve(ln))
}

type fixer struct {
	inner       http.Handler
	pageSize    int
	maxManifest int64
}

// route splits /v2/<name>/<kind>/<ref>; ok is false for anything else.
func route(p string) (name, kind, ref string, ok bool) {
	elems := strings.Split(p, "/")
	if len(elems) < 5 || elems[0] != "" || elems[1] != "v2" {
		return "", "", "", false
	}
	n := len(elems)
	return strings.Join(elems[2:n-2], "/"), elems[n-2], elems[n-1], true
}

func (f *fixer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, kind, ref, ok := route(r.URL.Path)
	if ok {
		switch {
		case kind == "referrers" && r.Method == http.MethodGet:
			f.referrers(w, r, name, ref)
			return
		case kind == "manifests" && r.Method == http.MethodPut:
			f.putManifest(w, r, name, ref)
			return
		case kind == "manifests" && r.Method == http.MethodDelete && digestRe.MatchString(ref):
			f.deleteManifest(w, r, name, ref)
			return
		case kind == "tags" && ref == "list" && r.Method == http.MethodGet:
			f.tags(w, r)
			return
		case kind == "blobs" && r.Method == http.MethodDelete && digestRe.MatchString(ref):
			// ggcr's disk blob handler answers 500 for a blob it does not have.
			if rec := f.do(http.MethodHead, r.URL.Path, nil, nil); rec.Code == http.StatusNotFound {
				writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
				return
			}
		}
	}
	f.inner.ServeHTTP(w, r)
}

// do sends a request to the wrapped registry and records its answer.
func (f *fixer) do(method, target string, hdr http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, req)
	return rec
}

func relay(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]interface{}{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, contentType string, v interface{}) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// The fields of a manifest (image manifest or index) that referrers descriptors need.
type manifestFields struct {
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
	Annotations map[string]string `json:"annotations"`
}

// OCI distribution spec 1.1, "Listing Referrers".
func (f *fixer) referrers(w http.ResponseWriter, r *http.Request, name, subject string) {
	rec := f.do(http.MethodGet, "/v2/"+name+"/referrers/"+subject, nil, nil)
	var all []descriptor
	switch {
	case rec.Code == http.StatusOK:
		var idx index
		if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", "inner referrers answer: "+err.Error())
			return
		}
		all = idx.Manifests
	case rec.Code == http.StatusNotFound:
		// Unknown repository: the spec says a registry with the referrers API must not
		// answer 404; the list is empty.
	default:
		relay(w, rec, rec.Body.Bytes())
		return
	}

	filters := r.URL.Query()["artifactType"]
	out := []descriptor{}
	for _, d := range all {
		mrec := f.do(http.MethodGet, "/v2/"+name+"/manifests/"+d.Digest, http.Header{"Accept": {manifestAccept}}, nil)
		if mrec.Code != http.StatusOK {
			continue // deleted meanwhile
		}
		var m manifestFields
		if err := json.Unmarshal(mrec.Body.Bytes(), &m); err != nil {
			continue
		}
		d.ArtifactType = m.ArtifactType
		if d.ArtifactType == "" && m.Config != nil {
			d.ArtifactType = m.Config.MediaType
		}
		d.Annotations = m.Annotations
		if len(filters) > 0 && !contains(filters, d.ArtifactType) {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })

	if len(filters) > 0 {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if last := r.URL.Query().Get("last"); last != "" {
		i := sort.Search(len(out), func(i int) bool { return out[i].Digest > last })
		out = out[i:]
	}
	if f.pageSize > 0 && len(out) > f.pageSize {
		out = out[:f.pageSize]
		q := url.Values{}
		for _, a := range filters {
			q.Add("artifactType", a)
		}
		q.Set("last", out[len(out)-1].Digest)
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/referrers/%s?%s>; rel="next"`, name, subject, q.Encode()))
	}
	writeJSON(w, ociIndex, index{SchemaVersion: 2, MediaType: ociIndex, Manifests: out})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fixer) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, f.maxManifest+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading body: "+err.Error())
		return
	}
	if int64(len(body)) > f.maxManifest {
		writeError(w, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID",
			fmt.Sprintf("manifest is larger than %d bytes", f.maxManifest))
		return
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if digestRe.MatchString(ref) && ref != digest {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID",
			fmt.Sprintf("manifest digest %s does not match reference %s", digest, ref))
		return
	}
	var m manifestFields
	if err := json.Unmarshal(body, &m); err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest is not JSON: "+err.Error())
		return
	}
	rec := f.do(http.MethodPut, r.URL.Path, http.Header{"Content-Type": r.Header["Content-Type"]}, body)
	if rec.Code == http.StatusCreated {
		rec.Header().Set("Location", "/v2/"+name+"/manifests/"+digest)
		// Spec 1.1, "Pushing Manifests with Subject".
		if m.Subject != nil && m.Subject.Digest != "" {
			rec.Header().Set("OCI-Subject", m.Subject.Digest)
		}
	}
	relay(w, rec, rec.Body.Bytes())
}

// Deleting a manifest by digest also deletes the tags that point at it, as distribution does
// (ggcr keeps them, and they would still resolve).
func (f *fixer) deleteManifest(w http.ResponseWriter, r *http.Request, name, digest string) {
	var tags []string
	trec := f.do(http.MethodGet, "/v2/"+name+"/tags/list", nil, nil)
	if trec.Code == http.StatusOK {
		var tl struct {
			Tags []string `json:"tags"`
		}
		if json.Unmarshal(trec.Body.Bytes(), &tl) == nil {
			for _, t := range tl.Tags {
				hrec := f.do(http.MethodHead, "/v2/"+name+"/manifests/"+t, http.Header{"Accept": {manifestAccept}}, nil)
				if hrec.Code == http.StatusOK && hrec.Header().Get("Docker-Content-Digest") == digest {
					tags = append(tags, t)
				}
			}
		}
	}
	rec := f.do(http.MethodDelete, r.URL.Path, nil, nil)
	if rec.Code == http.StatusAccepted {
		for _, t := range tags {
			f.do(http.MethodDelete, "/v2/"+name+"/manifests/"+t, nil, nil)
		}
	}
	relay(w, rec, rec.Body.Bytes())
}

func (f *fixer) tags(w http.ResponseWriter, r *http.Request) {
	rec := f.do(http.MethodGet, r.URL.RequestURI(), nil, nil)
	if rec.Code != http.StatusOK {
		relay(w, rec, rec.Body.Bytes())
		return
	}
	var tl struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tl); err != nil {
		relay(w, rec, rec.Body.Bytes())
		return
	}
	q := r.URL.Query()
	kept := []string{}
	for _, t := range tl.Tags {
		if last := q.Get("last"); last == "" || t > last {
			kept = append(kept, t)
		}
	}
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n > 0 && len(kept) == n {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {kept[len(kept)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, tl.Name, next.Encode()))
	}
	writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{tl.Name, kept})
}
